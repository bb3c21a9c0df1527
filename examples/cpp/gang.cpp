/* gang.cpp - the original Spoke README's gang example, unchanged but for
 * its include line: a 1x8 gang of MyActor (examples/cpp/gang.yaml runs it
 * with the hub on 127.0.0.1:8888, the port it names). */
#include <spoke/spoke.hpp>
int main() {
spoke::Client client("127.0.0.1", 8888, true);
// Allocate 1 Node with 8 GPUs
spoke::ResourceSpec res; res.num_gpus = 1;
auto alloc = client.gangAllocate(1, 8, res).get();
// Launch Actors
for(int i=0; i<alloc.num_members; ++i) {
client.launchActor(alloc.ticket_id, i, "MyActor", "worker_" + std::to_string(i), "");
}
}
