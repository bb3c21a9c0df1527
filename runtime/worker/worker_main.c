/* worker_main.c - the stock `spoke-worker`: loads actor modules and serves
 * one actor (see worker.c). */
#include <spoke/spoke.h>

/* Actor modules resolve spoke_* from this program (-export-dynamic), and
 * the linker keeps only the parts of libspoke a program uses: these keep
 * the parts an actor may call and the worker itself does not (handles and
 * calls to other actors, the hub client, an engine's loop hooks). */
void *const spk_worker_exports[] = {
	(void *)spoke_actor_open,
	(void *)spoke_client_open,
	(void *)spoke_version,
	(void *)spoke_worker_timer, /* hooks.c: an engine's timers and descriptors */
};

int main(int argc, char **argv)
{
	return spoke_worker_main(argc, argv);
}
