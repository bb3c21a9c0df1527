/* errors.cpp - the C++ binding against a live job (tests/cpp/run.sh runs
 * it as the driver of a spoke-launch --local job whose agent offers
 * examples/cpp's MyActor module): serializers, calls, callAsync, gangs and
 * every error path as a spoke::Error with the right code.  It is also its
 * own worker program (spoke_worker_maybe_run) for the actor types below,
 * whose init and methods throw.  Prints "ok N - what" per check and exits 1
 * if any failed. */
#include <spoke/spoke.hpp>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include "complex_task.hpp"

namespace {

int n_checks, n_failed;

void ok(bool cond, const std::string &what)
{
	n_checks++;
	if (!cond)
		n_failed++;
	std::printf("%s %d - %s\n", cond ? "ok" : "not ok", n_checks, what.c_str());
	std::fflush(stdout);
}

/* Runs f, which must throw spoke::Error with code (and, for a method's
 * failure, that method status and a message containing needle). */
template <class F>
void expect_error(const std::string &what, int code, F &&f, int method_status = 0,
		  const std::string &needle = {})
{
	try {
		f();
		ok(false, what + ": no exception");
	} catch (const spoke::Error &e) {
		bool good = e.code() == code && e.methodStatus() == method_status &&
			    std::string(e.what()).find(needle) != std::string::npos;
		ok(good, what + ": " + e.name() + " (" + e.what() + ")");
	} catch (const std::exception &e) {
		ok(false, what + ": not a spoke::Error: " + e.what());
	}
}

/* A killed actor stops in a moment, not at once: calls f until it throws
 * (for at most 5 s), then checks the error like expect_error. */
template <class F>
void expect_error_soon(const std::string &what, int code, F &&f, const std::string &needle = {})
{
	for (int i = 0; i < 50; i++) {
		try {
			f();
		} catch (...) {
			break;
		}
		usleep(100 * 1000);
	}
	expect_error(what, code, f, 0, needle);
}

struct BadPack {
	int x = 0;
};

} // namespace

template <> struct spoke::Serializer<BadPack> {
	static void PackTo(spoke::MessageWriter &, const BadPack &)
	{
		throw std::logic_error("BadPack cannot be packed");
	}
	static void UnpackFrom(spoke::MessageView &, BadPack &) {}
};

/* Actor types of this program (spawned with SpawnOptions::program). */
class Thrower : public spoke::Actor {
public:
	/* The spawn's arguments: a word; "fail" fails the spawn. */
	explicit Thrower(spoke::MessageView args)
	{
		if (args.remaining() && args.read<std::string>() == "fail")
			throw spoke::Error(SPOKE_EINVAL, "Thrower told to fail its init");
	}
	void registerMethods() override
	{
		registerMethod(1, "std_throw", [](spoke::MessageView) -> std::string {
			throw std::runtime_error("a std::runtime_error from a method");
		});
		registerMethod(2, "spoke_throw", [](const std::string &s) -> std::string {
			throw spoke::Error(-ERANGE, "bad input '" + s + "'");
		});
		registerMethod(3, "sum", [](const std::vector<double> &v) {
			double s = 0;
			for (double x : v)
				s += x;
			return s;
		});
		registerMethod(4, "raw", [](spoke::MessageView in, spoke::MessageWriter &out) {
			out.writeRaw(in.data(), in.size());
		});
		registerMethod(5, "nothing", [](spoke::MessageView) {});
	}
};
SPOKE_REGISTER_ACTOR(Thrower, "Thrower");

namespace {

void serializers()
{
	unsigned char mem[256];
	spoke_buf b;
	spoke_buf_init(&b, mem, sizeof(mem));
	spoke::MessageWriter w(&b);
	std::vector<std::string> words{ "a", "bc", "" };
	w << int8_t(-5) << uint16_t(65000) << int32_t(-7) << uint64_t(1) << 2.5f << -1.25 << true
	  << std::string("hi") << std::vector<float>{ 1.5f, 2.5f } << words;
	ok(w.error() == 0, "pack arithmetic, string, vectors");

	spoke::MessageView v(mem, w.size());
	bool good = v.read<int8_t>() == -5 && v.read<uint16_t>() == 65000 &&
		    v.read<int32_t>() == -7 && v.read<uint64_t>() == 1 && v.read<float>() == 2.5f &&
		    v.read<double>() == -1.25 && v.read<bool>() &&
		    v.read<std::string>() == "hi" &&
		    v.read<std::vector<float>>() == std::vector<float>{ 1.5f, 2.5f } &&
		    v.read<std::vector<std::string>>() == words && v.remaining() == 0;
	ok(good, "unpack them in order");
	expect_error("read past the end", SPOKE_ESHORT, [&] { v.read<uint32_t>(); });

	// The C++ ComplexTask and the C complex_task share an encoding.
	spoke_buf_init(&b, mem, sizeof(mem));
	spoke::MessageWriter w2(&b);
	w2 << ComplexTask{ 7, "t", { 1, 2, 3 } };
	spoke::MessageView v2(mem, w2.size());
	ComplexTask t = v2.read<ComplexTask>();
	ok(t.id == 7 && t.name == "t" && t.values.size() == 3 && w2.error() == 0,
	   "ComplexTask round trip");

	// A count larger than the message allocates nothing and fails.
	unsigned char huge[4] = { 0xff, 0xff, 0xff, 0x7f };
	spoke::MessageView v3(huge, sizeof(huge));
	expect_error("vector count over the message", SPOKE_ESHORT,
		     [&] { v3.read<std::vector<std::string>>(); });

	spoke_buf_init(&b, mem, 8);
	spoke::MessageWriter w3(&b);
	w3 << std::string(100, 'x');
	ok(w3.error() == SPOKE_ETOOBIG || w3.error() == SPOKE_ENOSPC, "writer error is sticky");
}

void calls(spoke::Client &client, const char *self)
{
	client.spawnRemote("MyActor", "e1");
	std::string hello = client.callRemote<std::string, std::string>("e1", 0x01, "").get();
	ok(hello == "Hello from Spoke!", "callRemote 0x01: " + hello);
	ok(client.initRDMA("e1"), "initRDMA on one node: true (shared memory)");

	ComplexTask task{ 666, "ZeroCopyCheck", { 1.0, 2.0 } };
	std::string r = client.callRemote<ComplexTask, std::string>("e1", 0x60, task).get();
	ok(r.rfind("id=666 name=ZeroCopyCheck values=2 sum=3.0", 0) == 0, "ComplexTask: " + r);

	expect_error("a method that throws spoke::Error", SPOKE_EMETHOD,
		     [&] { client.callRemote<ComplexTask, std::string>("e1", 0x60, ComplexTask{ 1, "x", {} }).get(); },
		     -EINVAL, "task 1 has no values");
	expect_error("no such method", SPOKE_ENOMETHOD,
		     [&] { client.callRemote<std::string, std::string>("e1", 0x77, "").get(); });
	expect_error("a request that does not unpack", SPOKE_EMETHOD,
		     [&] { client.callRemote<int32_t, std::string>("e1", 0x60, 5).get(); },
		     SPOKE_ESHORT);
	try {
		client.callRemote<BadPack, std::string>("e1", 0x01, BadPack{}).get();
		ok(false, "a Serializer that throws");
	} catch (const std::logic_error &e) {
		ok(true, std::string("a Serializer's own exception, through spoke_call_obj: ") +
				 e.what());
	}
	expect_error("a missing actor", SPOKE_ENOACTOR,
		     [&] { client.callRemote<std::string, std::string>("nobody", 1, "").get(); });
	expect_error("an unknown actor type", SPOKE_ENOTYPE,
		     [&] { client.spawnRemote("NoSuchType", "e2"); });
	expect_error("a name in use", SPOKE_EEXIST, [&] { client.spawnRemote("MyActor", "e1"); });

	// Pipelined calls on one handle, futures in flight together.
	{
		spoke::ActorHandle h = client.actor("e1");
		std::vector<spoke::Future<std::string>> fs;
		for (int i = 0; i < 16; i++)
			fs.push_back(h.callAsync<std::string>(0x01, std::string()));
		int n = 0;
		for (auto &f : fs)
			n += f.get() == "Hello from Spoke!";
		ok(n == 16, "16 callAsync in flight: " + std::to_string(n) + " replies");
		auto small = h.callAsync<std::string>(0x01, std::string(), 4);
		expect_error("callAsync reply over its capacity", SPOKE_ENOSPC, [&] { small.get(); });
		auto dropped = h.callAsync<std::string>(0x01, std::string());
		(void)dropped; // its destructor waits for it
		ok(h.transport() == "shm" || h.transport() == "tcp" || h.transport() == "rdma",
		   "transport " + h.transport());
	}

	// The dead actor: a handle opened before it died, then the hub's answer.
	client.spawnRemote("MyActor", "e3");
	{
		spoke::ActorHandle h = client.actor("e3");
		h.call<std::string>(0x01, std::string());
		client.kill("e3");
		expect_error_soon("a dead actor (handle opened before it died)", SPOKE_EDEAD,
				  [&] { h.call<std::string>(0x01, std::string()); });
	}
	expect_error("a killed actor, opened again: the hub says how it died", SPOKE_EDEAD,
		     [&] { client.callRemote<std::string, std::string>("e3", 0x01, "").get(); }, 0,
		     "killed by a client");
	// Killed by another client: callRemote's kept handle says so, then asks again.
	client.spawnRemote("MyActor", "e4");
	client.callRemote<std::string, std::string>("e4", 0x01, "").get();
	spoke::Client().kill("e4");
	expect_error_soon("a dead actor through callRemote", SPOKE_EDEAD,
			  [&] { client.callRemote<std::string, std::string>("e4", 0x01, "").get(); });
	expect_error("callRemote asks the hub again after SPOKE_EDEAD", SPOKE_EDEAD,
		     [&] { client.callRemote<std::string, std::string>("e4", 0x01, "").get(); }, 0,
		     "killed by a client");
	client.kill("e1");

	// This program's own actor types: methods and an init that throw.
	spoke::SpawnOptions own;
	own.program = self;
	client.spawnRemote("Thrower", "t1", {}, own);
	expect_error("a method that throws std::runtime_error", SPOKE_EMETHOD,
		     [&] { client.callRemote<std::string, std::string>("t1", 1, "").get(); },
		     SPOKE_EMETHOD, "a std::runtime_error from a method");
	expect_error("a method that throws spoke::Error(-ERANGE)", SPOKE_EMETHOD,
		     [&] { client.callRemote<std::string, std::string>("t1", 2, "q").get(); }, -ERANGE,
		     "bad input 'q'");
	double s = client.callRemote<std::vector<double>, double>("t1", 3, { 1.5, 2.5, 3 }).get();
	ok(s == 7.0, "typed handler: sum " + std::to_string(s));
	std::string raw = client.actor("t1").call<std::string>(4, std::string("abc"));
	ok(raw == "abc", "MessageView/MessageWriter handler echoes the packed string");
	client.actor("t1").call<void>(5, std::string());
	client.callRemote<std::string, void>("t1", 5, "").get();
	client.actor("t1").callAsync<void>(5, std::string()).get();
	ok(true, "void handler: an empty reply, taken as void");
	expect_error("an empty reply where a string is expected", SPOKE_ESHORT, [&] {
		client.callRemote<std::string, std::string>("t1", 5, "").get();
	});
	std::string fail_args;
	{
		unsigned char mem[32];
		spoke_buf b;
		spoke_buf_init(&b, mem, sizeof(mem));
		spoke_buf_put_str(&b, "fail");
		fail_args.assign(reinterpret_cast<char *>(mem), b.len);
	}
	expect_error("an init (constructor) that throws spoke::Error", SPOKE_EINVAL,
		     [&] { client.spawnRemote("Thrower", "t2", fail_args, own); });
	client.kill("t1");
}

void gangs(spoke::Client &client)
{
	spoke::ResourceSpec res;
	res.num_gpus = 1;
	expect_error("a gang larger than the nodes", SPOKE_ENORES,
		     [&] { client.gangAllocate(1, 64, res).get(); });
	expect_error("a gang of 0 nodes", SPOKE_EINVAL, [&] { client.gangAllocate(0, 1, res).get(); });

	uint64_t id;
	{
		auto alloc = client.gangAllocate(1, 2, res).get();
		id = alloc.ticket_id;
		ok(alloc.num_members == 2 && alloc.slots.size() == 2, "1x2 gang: 2 slots");
		bool pinned = true;
		for (int i = 0; i < alloc.num_members; i++) {
			std::string name = "g_" + std::to_string(i);
			client.launchActor(alloc, i, "MyActor", name);
			std::string gpus = client.callRemote<std::string, std::string>(name, 0x02, "").get();
			pinned = pinned && alloc.slots[i].gpus.size() == 1 &&
				 gpus == std::to_string(alloc.slots[i].gpus[0]);
		}
		ok(pinned, "each gang actor sees its slot's GPU");
		expect_error("a rank past the gang", SPOKE_EINVAL,
			     [&] { client.launchActor(alloc.ticket_id, 9, "MyActor", "g_9"); });
	} // released here: its actors stop
	expect_error("launch into a released ticket", SPOKE_ENOTICKET,
		     [&] { client.launchActor(id, 0, "MyActor", "late"); });
	// The released gang's actors stop: callRemote's kept handle finds it dead.
	int code = 0;
	for (int i = 0; i < 50 && !code; i++) {
		try {
			client.callRemote<std::string, std::string>("g_0", 1, "").get();
			usleep(100 * 1000);
		} catch (const spoke::Error &e) {
			code = e.code();
		}
	}
	ok(code == SPOKE_EDEAD || code == SPOKE_ENOACTOR,
	   std::string("the released gang's actors stop: ") + spoke_strerror(code));
}

} // namespace

int main(int argc, char **argv)
{
	spoke_worker_maybe_run(argc, argv);
	serializers();
	expect_error("no hub there", SPOKE_EHUB, [] { spoke::Client c("127.0.0.1", 1, true); });
	try {
		spoke::Client client; // $SPOKE_HUB and the job's token
		char self[4096];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		self[n > 0 ? n : 0] = '\0';
		calls(client, self);
		gangs(client);
	} catch (const std::exception &e) {
		ok(false, std::string("unexpected exception: ") + e.what());
	}
	std::printf("errors: %d checks, %d failed\n", n_checks, n_failed);
	return n_failed ? 1 : 0;
}
