/* my_actor.cpp - the original Spoke README's MyActor, built as an actor
 * module (examples/cpp/.libs/my_actor.so) that the stock spoke-worker
 * loads.  The README's code is unchanged but for its include line; method
 * 0x60 (the ComplexTask that examples/cpp/call.cpp sends) and 0x02 (the
 * GPUs the actor sees) are added beside it. */
#include <spoke/spoke.hpp>

#include <cstdio>
#include <cstdlib>

#include "complex_task.hpp"

class MyActor : public spoke::Actor {
public:
std::string handle_hello(spoke::MessageView msg) {
return "Hello from Spoke!";
}
void registerMethods() override {
registerMethod(0x01, [this](auto m) { return handle_hello(m); });
registerMethod(0x02, [this](auto m) { return handle_gpus(m); });
registerMethod(0x60, [this](const ComplexTask &t) { return handle_task(t); });
}

private:
	std::string handle_gpus(spoke::MessageView)
	{
		const char *cvd = std::getenv("CUDA_VISIBLE_DEVICES");
		return cvd ? cvd : "";
	}
	std::string handle_task(const ComplexTask &t)
	{
		if (t.values.empty())
			throw spoke::Error(-EINVAL, "task " + std::to_string(t.id) + " has no values");
		double sum = 0;
		for (float v : t.values)
			sum += v;
		char text[64];
		std::snprintf(text, sizeof(text), " values=%zu sum=%.1f", t.values.size(), sum);
		return "id=" + std::to_string(t.id) + " name=" + t.name + text + " by " + selfName();
	}
};
// Register the actor type
SPOKE_REGISTER_ACTOR(MyActor, "MyActor");
