/* call.cpp - the original Spoke README's ComplexTask example, unchanged
 * but for its include line; the README leaves out the standard headers it
 * uses and ComplexTask (the user's own type, complex_task.hpp), added here.
 * examples/cpp/call.yaml runs it with the hub on 127.0.0.1:8888. */
#include <spoke/spoke.hpp>

#include <chrono>
#include <iostream>
#include <thread>

#include "complex_task.hpp"

int main() {
// Enable RDMA in the client
spoke::Client client("127.0.0.1", 8888, true);
client.spawnRemote("MyActor", "actor_instance_1");
std::this_thread::sleep_for(std::chrono::milliseconds(200));
// Explicitly initialize RDMA for this actor
if (!client.initRDMA("actor_instance_1")) {
return 1;
}
ComplexTask task = {666, "ZeroCopyCheck", {1.0, 2.0}};
// callRemote automatically uses the zero-copy path if RDMA is initialized
auto future = client.callRemote<ComplexTask, std::string>("actor_instance_1", 0x60, task);
std::cout << "Result: " << future.get() << std::endl;
return 0;
}
