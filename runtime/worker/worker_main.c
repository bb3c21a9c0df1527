/* worker_main.c - the stock `spoke-worker`: loads actor modules and serves
 * one actor (see worker.c). */
#include <spoke/actor.h>

int main(int argc, char **argv)
{
	return spoke_worker_main(argc, argv);
}
