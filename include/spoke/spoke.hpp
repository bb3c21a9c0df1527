/* spoke/spoke.hpp - the C++ binding: header-only, C++17, over the C API
 * (spoke/spoke.h) and nothing else.
 *
 *     spoke::Client client("127.0.0.1", 8888, true);   // or spoke::Client(): $SPOKE_HUB
 *     client.spawnRemote("MyActor", "a1");
 *     auto reply = client.callRemote<ComplexTask, std::string>("a1", 0x60, task).get();
 *
 *     class MyActor : public spoke::Actor {
 *     public:
 *             void registerMethods() override {
 *                     registerMethod(0x01, [this](spoke::MessageView m) { return std::string("hi"); });
 *             }
 *     };
 *     SPOKE_REGISTER_ACTOR(MyActor, "MyActor");
 *
 * What maps to what:
 *   spoke::Client            spoke_client (open in the constructor, close in the destructor)
 *   spoke::ActorHandle       spoke_actor (open by Client::actor, close in the destructor)
 *   spoke::GangAllocation    spoke_ticket (gangAllocate; released in the destructor)
 *   spoke::Future<T>         a finished call, or a spoke_future in flight (callAsync)
 *   spoke::Stream            spoke_stream (ActorHandle::stream; closed in the destructor)
 *   spoke::Error             a negative code, spoke_errmsg() and spoke_method_status()
 *   spoke::Serializer<T>     spoke_serializer (PackTo / UnpackFrom over spoke_buf / spoke_view)
 *   spoke::Actor             spoke_actor_type, one C type per SPOKE_REGISTER_ACTOR(Class, "Name")
 *
 * Every failure is thrown as spoke::Error; nothing throws out of a C
 * callback (a method, an init, a serializer called by spoke_call_obj): the
 * binding catches there and turns the exception into the C code (in a
 * method, through spoke_method_fail, so the caller reads its message).
 *
 * Allocation: a Client keeps one shared state (the C client, the actor
 * handles callRemote opened, by name, and the tickets it holds); a
 * std::string or std::vector result allocates what it holds; callAsync
 * allocates its reply buffer.  A call through callRemote or
 * ActorHandle::call allocates nothing else: the request is packed straight
 * into the transport's send buffer and the reply unpacked in place
 * (spoke_call_obj).  Types are move-only. */
#ifndef SPOKE_SPOKE_HPP
#define SPOKE_SPOKE_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#error "spoke/spoke.hpp needs C++17 (g++ -std=c++17); from C, include spoke/spoke.h"
#endif

#include <spoke/spoke.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace spoke {

// ---- errors ---------------------------------------------------------------

/* A failed Spoke call: code() is the C code (SPOKE_E* or -errno), what()
 * says where and why (spoke_errmsg() of the failed C call), and after
 * SPOKE_EMETHOD methodStatus() is the method's own code. */
class Error : public std::runtime_error {
public:
	Error(int code, const std::string &what, int method_status = 0)
		: std::runtime_error(what), code_(code), method_status_(method_status)
	{
	}
	int code() const noexcept { return code_; }
	int methodStatus() const noexcept { return method_status_; }
	/* The code's name, e.g. "no actor of that name". */
	const char *name() const noexcept { return spoke_strerror(code_); }

	/* The calling thread's last C failure, rc, in context. */
	static Error last(int rc, std::string_view context)
	{
		std::string msg(context);
		const char *why = spoke_errmsg();

		msg += ": ";
		msg += why && *why ? why : spoke_strerror(rc);
		return Error(rc, msg, rc == SPOKE_EMETHOD ? spoke_method_status() : 0);
	}

private:
	int code_;
	int method_status_;
};

namespace detail {
inline void check(int rc, std::string_view context)
{
	if (rc < 0)
		throw Error::last(rc, context);
}
} // namespace detail

// ---- serialization --------------------------------------------------------

class MessageWriter;
class MessageView;

/* PackTo / UnpackFrom for one type.  Provided for arithmetic types,
 * std::string (and std::string_view, unpacked in place), std::vector of
 * them; specialise it for your own types:
 *
 *     template <> struct spoke::Serializer<ComplexTask> {
 *             static void PackTo(spoke::MessageWriter &out, const ComplexTask &t);
 *             static void UnpackFrom(spoke::MessageView &in, ComplexTask &t);
 *     };
 *
 * The encoding is the C serializer's (spoke/serializer.h): integers and
 * floats little-endian at their size, strings as a u32 length and the
 * bytes, a vector as a u32 count and its elements (so a std::vector<float>
 * is the C f32 array, a std::vector<uint8_t> the C byte array). */
template <class T, class Enable = void> struct Serializer; // no default: specialise it

/* Writes into a spoke_buf: the send buffer of a request, the reply buffer
 * a method is handed.  Errors are sticky in the buffer (error()); writing
 * never throws by itself. */
class MessageWriter {
public:
	explicit MessageWriter(spoke_buf *b) noexcept : b_(b) {}

	template <class T> MessageWriter &write(const T &v)
	{
		Serializer<T>::PackTo(*this, v);
		return *this;
	}
	template <class T> MessageWriter &operator<<(const T &v) { return write(v); }
	/* Bytes with no length prefix. */
	MessageWriter &writeRaw(const void *p, size_t n)
	{
		spoke_buf_put_raw(b_, p, n);
		return *this;
	}
	/* n bytes to fill in place (nullptr if they do not fit). */
	void *reserve(size_t n) noexcept { return spoke_buf_reserve(b_, n); }
	/* A nested record: mark = beginRecord(); write the fields; endRecord(mark). */
	size_t beginRecord() noexcept { return spoke_buf_record_begin(b_); }
	void endRecord(size_t mark) noexcept { spoke_buf_record_end(b_, mark); }

	size_t size() const noexcept { return b_->len; }
	int error() const noexcept { return spoke_buf_error(b_); }
	spoke_buf *raw() noexcept { return b_; }

private:
	spoke_buf *b_;
};

/* Reads a received message in place (a request in a method, a reply in a
 * Serializer): a copy of the C view, so reading moves this view only.
 * Reading past the end, or a malformed value, throws Error(SPOKE_ESHORT). */
class MessageView {
public:
	MessageView() noexcept { spoke_view_init(&v_, nullptr, 0); }
	MessageView(const void *data, size_t len) noexcept { spoke_view_init(&v_, data, len); }
	explicit MessageView(const spoke_view *v) noexcept : v_(*v) {}

	/* The whole message, and what is left of it. */
	const uint8_t *data() const noexcept { return v_.data; }
	size_t size() const noexcept { return v_.len; }
	size_t remaining() const noexcept { return spoke_view_remaining(&v_); }
	std::string_view bytes() const noexcept
	{
		return { reinterpret_cast<const char *>(v_.data), v_.len };
	}

	template <class T> T read()
	{
		T v{};
		read(v);
		return v;
	}
	template <class T> MessageView &read(T &out)
	{
		Serializer<T>::UnpackFrom(*this, out);
		check();
		return *this;
	}
	template <class T> MessageView &operator>>(T &out) { return read(out); }
	/* n bytes in place, no length prefix. */
	const void *readRaw(size_t n)
	{
		const void *p = nullptr;

		spoke_view_get_raw(&v_, &p, n);
		check();
		return p;
	}
	/* A nested record (MessageWriter::beginRecord) as a view of its own. */
	MessageView readRecord()
	{
		MessageView rec;

		spoke_view_get_record(&v_, &rec.v_);
		check();
		return rec;
	}

	int error() const noexcept { return spoke_view_error(&v_); }
	spoke_view *raw() noexcept { return &v_; }
	/* Throws the view's sticky error, if any. */
	void check() const
	{
		if (int err = spoke_view_error(&v_))
			throw Error(err, std::string("unpacking a message: ") + spoke_strerror(err));
	}

private:
	spoke_view v_;
};

template <class T>
struct Serializer<T, std::enable_if_t<std::is_arithmetic_v<T>>> {
	static_assert(sizeof(T) <= 8 && !std::is_same_v<T, long double>,
		      "spoke::Serializer: no encoding for long double");
	using U = std::conditional_t<sizeof(T) == 1, uint8_t,
		  std::conditional_t<sizeof(T) == 2, uint16_t,
		  std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;

	static void PackTo(MessageWriter &out, const T &v)
	{
		if constexpr (std::is_same_v<T, float>)
			spoke_buf_put_f32(out.raw(), v);
		else if constexpr (std::is_same_v<T, double>)
			spoke_buf_put_f64(out.raw(), v);
		else if constexpr (std::is_same_v<T, bool>)
			spoke_buf_put_bool(out.raw(), v);
		else if constexpr (sizeof(T) == 1)
			spoke_buf_put_u8(out.raw(), static_cast<U>(v));
		else if constexpr (sizeof(T) == 2)
			spoke_buf_put_u16(out.raw(), static_cast<U>(v));
		else if constexpr (sizeof(T) == 4)
			spoke_buf_put_u32(out.raw(), static_cast<U>(v));
		else
			spoke_buf_put_u64(out.raw(), static_cast<U>(v));
	}
	static void UnpackFrom(MessageView &in, T &v)
	{
		if constexpr (std::is_same_v<T, float>) {
			spoke_view_get_f32(in.raw(), &v);
		} else if constexpr (std::is_same_v<T, double>) {
			spoke_view_get_f64(in.raw(), &v);
		} else if constexpr (std::is_same_v<T, bool>) {
			spoke_view_get_bool(in.raw(), &v);
		} else {
			U u = 0;
			if constexpr (sizeof(T) == 1)
				spoke_view_get_u8(in.raw(), &u);
			else if constexpr (sizeof(T) == 2)
				spoke_view_get_u16(in.raw(), &u);
			else if constexpr (sizeof(T) == 4)
				spoke_view_get_u32(in.raw(), &u);
			else
				spoke_view_get_u64(in.raw(), &u);
			v = static_cast<T>(u);
		}
	}
};

template <> struct Serializer<std::string> {
	static void PackTo(MessageWriter &out, const std::string &s)
	{
		spoke_buf_put_strn(out.raw(), s.data(), s.size());
	}
	static void UnpackFrom(MessageView &in, std::string &s)
	{
		const char *p = nullptr;
		size_t n = 0;

		if (spoke_view_get_str(in.raw(), &p, &n) == 0)
			s.assign(p, n);
	}
};

/* Unpacked in place: valid while the message is (inside a method, or a
 * Serializer of a larger type); never the result of a call. */
template <> struct Serializer<std::string_view> {
	static void PackTo(MessageWriter &out, std::string_view s)
	{
		spoke_buf_put_strn(out.raw(), s.data(), s.size());
	}
	static void UnpackFrom(MessageView &in, std::string_view &s)
	{
		const char *p = nullptr;
		size_t n = 0;

		if (spoke_view_get_str(in.raw(), &p, &n) == 0)
			s = std::string_view(p, n);
	}
};

template <class T, class A> struct Serializer<std::vector<T, A>> {
	// Arithmetic elements move as one block where the host is little-endian.
	static constexpr bool kBlock = std::is_arithmetic_v<T> && !std::is_same_v<T, bool> &&
				       __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

	static void PackTo(MessageWriter &out, const std::vector<T, A> &v)
	{
		if (v.size() > UINT32_MAX) {
			spoke_buf_reserve(out.raw(), SIZE_MAX); // fails: makes the error sticky
			return;
		}
		spoke_buf_put_u32(out.raw(), static_cast<uint32_t>(v.size()));
		if constexpr (kBlock) {
			if (!v.empty())
				out.writeRaw(v.data(), v.size() * sizeof(T));
		} else {
			for (const auto &e : v)
				Serializer<T>::PackTo(out, e);
		}
	}
	static void UnpackFrom(MessageView &in, std::vector<T, A> &v)
	{
		uint32_t n = 0;

		v.clear();
		if (spoke_view_get_u32(in.raw(), &n) < 0)
			return;
		// A corrupt count must not allocate: every element takes a byte at least.
		if (n > in.remaining()) {
			const void *p;
			spoke_view_get_raw(in.raw(), &p, SIZE_MAX); // fails: SPOKE_ESHORT
			return;
		}
		if constexpr (kBlock) {
			const void *p = nullptr;
			if (n && spoke_view_get_raw(in.raw(), &p, size_t{ n } * sizeof(T)) == 0) {
				v.resize(n);
				std::memcpy(v.data(), p, size_t{ n } * sizeof(T));
			}
		} else {
			v.reserve(n);
			for (uint32_t i = 0; i < n && !in.error(); i++) {
				T e{};
				Serializer<T>::UnpackFrom(in, e);
				v.push_back(std::move(e));
			}
		}
	}
};

namespace detail {
/* spoke_serializer callbacks around Serializer<T>: an exception is kept
 * for the caller to rethrow, never thrown through the C library. */
template <class T> struct PackCtx {
	const T *obj;
	std::exception_ptr err;
};
template <class T> struct UnpackCtx {
	std::conditional_t<std::is_void_v<T>, void, T> *obj;
	std::exception_ptr err;
};
template <class T> int packTrampoline(spoke_buf *out, const void *p) noexcept
{
	auto *ctx = static_cast<PackCtx<T> *>(const_cast<void *>(p));
	try {
		MessageWriter w(out);
		Serializer<T>::PackTo(w, *ctx->obj);
		return spoke_buf_error(out);
	} catch (const Error &e) {
		ctx->err = std::current_exception();
		return e.code() < 0 ? e.code() : SPOKE_EINVAL;
	} catch (...) {
		ctx->err = std::current_exception();
		return SPOKE_EINVAL;
	}
}
template <class T> int unpackTrampoline(spoke_view *in, void *p) noexcept
{
	auto *ctx = static_cast<UnpackCtx<T> *>(p);
	try {
		MessageView v(in);
		Serializer<T>::UnpackFrom(v, *ctx->obj);
		*in = *v.raw(); // hand the position and error back
		return spoke_view_error(in);
	} catch (const Error &e) {
		ctx->err = std::current_exception();
		return e.code() < 0 ? e.code() : SPOKE_ESHORT;
	} catch (...) {
		ctx->err = std::current_exception();
		return SPOKE_ESHORT;
	}
}
template <class T> inline const spoke_serializer serializer_of = {
	packTrampoline<T>, unpackTrampoline<T>
};
} // namespace detail

// ---- futures ----------------------------------------------------------------

namespace detail {
struct ActorCore {
	spoke_actor *a = nullptr;
	explicit ActorCore(spoke_actor *h) : a(h) {}
	ActorCore(const ActorCore &) = delete;
	ActorCore &operator=(const ActorCore &) = delete;
	~ActorCore() { spoke_actor_close(a); }
};

/* An asynchronous call in flight: its C future, reply buffer and handle. */
struct Pending {
	spoke_future f{};
	std::vector<uint8_t> reply;
	std::shared_ptr<ActorCore> actor;
	bool waited = false;
	~Pending()
	{
		if (!waited) // the reply buffer must outlive the call: wait it out
			spoke_future_wait(&f, 0);
	}
};
} // namespace detail

/* What a Future<void> holds: a call with no reply to unpack. */
struct Nothing {};

/* The result of a call, gangAllocate or callAsync: get() returns it once
 * (or throws its Error); a future from callAsync waits in get() or wait(),
 * and its destructor waits for a call still in flight (at most the
 * client's default timeout).  Move-only.  Future<void>: a call whose reply
 * is ignored. */
template <class T> class Future {
public:
	using Value = std::conditional_t<std::is_void_v<T>, Nothing, T>;

	Future() = default;
	Future(Future &&) noexcept = default;
	Future &operator=(Future &&) noexcept = default;
	Future(const Future &) = delete;
	Future &operator=(const Future &) = delete;

	static Future ready(Value v)
	{
		Future f;
		f.value_.emplace(std::move(v));
		return f;
	}
	static Future failed(std::exception_ptr e)
	{
		Future f;
		f.err_ = std::move(e);
		return f;
	}
	/* A call in flight, its reply unpacked by Serializer<T> when it comes. */
	static Future pending(std::unique_ptr<detail::Pending> p)
	{
		Future f;
		f.pending_ = std::move(p);
		f.unpack_ = [](MessageView &in, std::optional<Value> &out) {
			Value v{};
			if constexpr (!std::is_void_v<T>)
				in.read(v);
			out.emplace(std::move(v));
		};
		return f;
	}

	bool valid() const noexcept { return value_ || err_ || pending_; }
	/* Waits (0: the client's default timeout) until the result is here;
	 * a timeout completes the future with SPOKE_ETIMEDOUT. */
	void wait(int timeout_ms = 0)
	{
		if (!pending_)
			return;
		std::unique_ptr<detail::Pending> p = std::move(pending_);
		int rc = spoke_future_wait(&p->f, timeout_ms);

		p->waited = true;
		if (rc < 0) {
			err_ = std::make_exception_ptr(Error::last(rc, "call"));
			return;
		}
		try {
			MessageView in(p->reply.data(), p->f.reply_len);
			unpack_(in, value_);
		} catch (...) {
			err_ = std::current_exception();
		}
	}
	/* Cancels a call in flight (spoke_future_cancel): returns at once,
	 * true if it was in flight; get() then throws SPOKE_ECANCELED, and the
	 * actor sees its call cancelled.  A finished future stays as it is
	 * (false). */
	bool cancel()
	{
		if (!pending_ || pending_->f.done_)
			return false;
		spoke_future_cancel(&pending_->f);
		return pending_->f.status == SPOKE_ECANCELED;
	}
	T get()
	{
		wait();
		if (err_) {
			std::exception_ptr e = std::move(err_);
			err_ = nullptr;
			std::rethrow_exception(e);
		}
		if (!value_)
			throw Error(SPOKE_EINVAL, "spoke::Future::get: no result (taken already)");
		Value v = std::move(*value_);
		value_.reset();
		if constexpr (!std::is_void_v<T>)
			return v;
	}

private:
	std::optional<Value> value_;
	std::exception_ptr err_;
	std::unique_ptr<detail::Pending> pending_;
	void (*unpack_)(MessageView &, std::optional<Value> &) = nullptr;
};

// ---- streams -------------------------------------------------------------------

/* A streamed reply (spoke_stream), from ActorHandle::stream(): its chunks
 * in order, each as a std::string (or std::vector<uint8_t>), into a buffer
 * of the stream's that grows to the largest chunk (SPOKE_ENOSPC keeps the
 * chunk for the read with room: nothing is lost or runs twice).
 *
 *     spoke::Stream s = actor.stream(GENERATE, prompt);
 *     for (const std::string &chunk : s)   // ends at SPOKE_EOF
 *             consume(chunk);
 *
 * next() returns false at the end and throws the method's failure (or
 * SPOKE_ETIMEDOUT when no chunk came within timeout_ms: the stream goes
 * on), as spoke::Error.  cancel() gives it up (the actor sees its call
 * cancelled; later reads throw SPOKE_ECANCELED); the destructor cancels a
 * stream that has not ended.  One thread reads a stream at a time, and
 * cancel() must not run under a read of another thread (as in C).
 * Move-only; it keeps its handle's C actor open. */
class Stream {
public:
	Stream() = default;
	Stream(spoke_stream *s, std::shared_ptr<detail::ActorCore> actor, uint32_t method)
		: s_(s), actor_(std::move(actor)), method_(method), buf_(4096)
	{
	}
	Stream(Stream &&o) noexcept { *this = std::move(o); }
	Stream &operator=(Stream &&o) noexcept
	{
		if (this != &o) {
			close();
			s_ = std::exchange(o.s_, nullptr);
			actor_ = std::move(o.actor_);
			method_ = o.method_;
			buf_ = std::move(o.buf_);
		}
		return *this;
	}
	Stream(const Stream &) = delete;
	Stream &operator=(const Stream &) = delete;
	~Stream() { close(); }

	/* The next chunk into chunk: true, or false once every chunk came. */
	template <class Bytes> bool next(Bytes &chunk, int timeout_ms = 0)
	{
		size_t n = read(timeout_ms);
		if (n == kEnd)
			return false;
		chunk.assign(reinterpret_cast<const typename Bytes::value_type *>(buf_.data()),
			     reinterpret_cast<const typename Bytes::value_type *>(buf_.data()) + n);
		return true;
	}
	/* Gives the stream up (spoke_stream_cancel); an ended one stays ended. */
	void cancel()
	{
		if (s_)
			spoke_stream_cancel(s_);
	}
	/* Cancels it if it has not ended and frees it (again: nothing). */
	void close() noexcept
	{
		spoke_stream_close(std::exchange(s_, nullptr));
		actor_.reset();
	}
	explicit operator bool() const noexcept { return s_ != nullptr; }
	/* The size of the chunk buffer now (it grows to the largest chunk). */
	size_t capacity() const noexcept { return buf_.size(); }

	/* A range of std::string chunks: for (const std::string &c : stream). */
	class iterator {
	public:
		using iterator_category = std::input_iterator_tag;
		using value_type = std::string;
		using difference_type = std::ptrdiff_t;
		using pointer = const std::string *;
		using reference = const std::string &;

		iterator() = default;
		explicit iterator(Stream *s) : s_(s) { ++*this; }
		reference operator*() const { return chunk_; }
		pointer operator->() const { return &chunk_; }
		iterator &operator++()
		{
			if (s_ && !s_->next(chunk_))
				s_ = nullptr;
			return *this;
		}
		void operator++(int) { ++*this; }
		bool operator==(const iterator &o) const { return s_ == o.s_; }
		bool operator!=(const iterator &o) const { return s_ != o.s_; }

	private:
		Stream *s_ = nullptr;
		std::string chunk_;
	};
	iterator begin() { return iterator(this); }
	iterator end() { return iterator(); }

private:
	static constexpr size_t kEnd = SIZE_MAX;

	size_t read(int timeout_ms)
	{
		if (!s_)
			throw Error(SPOKE_EINVAL, "spoke::Stream: closed (or moved from)");
		for (;;) {
			size_t n = 0;
			int rc = spoke_stream_next(s_, buf_.data(), buf_.size(), &n, timeout_ms);

			if (rc == 0)
				return n;
			if (rc == SPOKE_EOF)
				return kEnd;
			if (rc != SPOKE_ENOSPC || n <= buf_.size())
				throw Error::last(rc, "stream of method " + std::to_string(method_));
			buf_.resize(n); // the chunk is kept: read it again with room
		}
	}

	spoke_stream *s_ = nullptr;
	std::shared_ptr<detail::ActorCore> actor_;
	uint32_t method_ = 0;
	std::vector<uint8_t> buf_;
};

// ---- calling one actor --------------------------------------------------------

/* A handle for calling one actor (spoke_actor): thread-safe, closed when
 * the last of it and its futures in flight go.  Move-only. */
class ActorHandle {
public:
	ActorHandle() = default;
	explicit ActorHandle(std::shared_ptr<detail::ActorCore> core) : core_(std::move(core)) {}
	ActorHandle(ActorHandle &&) noexcept = default;
	ActorHandle &operator=(ActorHandle &&) noexcept = default;
	ActorHandle(const ActorHandle &) = delete;
	ActorHandle &operator=(const ActorHandle &) = delete;

	/* Calls method with req and returns its reply: the request packed
	 * straight into the send buffer, the reply unpacked in place
	 * (spoke_call_obj); throws Error (or what a Serializer threw). */
	template <class Resp, class Req>
	Resp call(uint32_t method, const Req &req, int timeout_ms = 0) const
	{
		detail::PackCtx<Req> pc{ &req, nullptr };
		typename Future<Resp>::Value resp{};
		detail::UnpackCtx<Resp> uc{ nullptr, nullptr };
		const spoke_serializer *rs = nullptr; // Resp void: the reply is ignored
		if constexpr (!std::is_void_v<Resp>) {
			uc.obj = &resp;
			rs = &detail::serializer_of<Resp>;
		}
		int rc = spoke_call_obj(get(), method, &detail::serializer_of<Req>, &pc, rs, &uc,
					timeout_ms);

		if (pc.err)
			std::rethrow_exception(pc.err);
		if (uc.err)
			std::rethrow_exception(uc.err);
		if (rc < 0) // the message is built on failure only: a call allocates nothing
			throw Error::last(rc, "call of method " + std::to_string(method));
		if constexpr (!std::is_void_v<Resp>)
			return resp;
	}
	/* Pipelined (spoke_call_async): the request is packed now, the call
	 * sent, and the future completes in order with the reply, which must
	 * fit reply_cap bytes (else get() throws SPOKE_ENOSPC: the method ran,
	 * its reply was too large).  Keep many in flight on one handle. */
	template <class Resp, class Req>
	Future<Resp> callAsync(uint32_t method, const Req &req, size_t reply_cap = 64 * 1024) const
	{
		std::vector<uint8_t> packed = packed_request(req);
		auto p = std::make_unique<detail::Pending>();
		p->reply.resize(reply_cap);
		p->actor = core_;
		int rc = spoke_call_async(get(), method, packed.data(), packed.size(),
					  p->reply.data(), p->reply.size(), &p->f);
		if (rc < 0) {
			p->waited = true;
			return Future<Resp>::failed(std::make_exception_ptr(
				Error::last(rc, "call of method " + std::to_string(method))));
		}
		return Future<Resp>::pending(std::move(p));
	}

	/* Calls method as a stream (spoke_call_stream): its reply comes in
	 * chunks, read in order from the Stream (next(), or a range-for).
	 * timeout_ms bounds the start (0: the client's default). */
	template <class Req> Stream stream(uint32_t method, const Req &req, int timeout_ms = 0) const
	{
		std::vector<uint8_t> packed = packed_request(req);
		return streamRaw(method, packed.data(), packed.size(), timeout_ms);
	}
	Stream stream(uint32_t method, int timeout_ms = 0) const
	{
		return streamRaw(method, nullptr, 0, timeout_ms);
	}
	/* The request as bytes, not packed by a Serializer. */
	Stream streamRaw(uint32_t method, const void *req, size_t len, int timeout_ms = 0) const
	{
		spoke_stream *s = nullptr;
		int rc = spoke_call_stream(get(), method, req, len, &s, timeout_ms);

		if (rc < 0)
			throw Error::last(rc, "stream of method " + std::to_string(method));
		return Stream(s, core_, method);
	}

	/* "shm", "rdma" or "tcp". */
	std::string transport() const { return spoke_actor_transport(get()); }
	/* Moves the handle to transport name now (spoke_actor_use_transport). */
	void useTransport(const std::string &name, int timeout_ms = 0) const
	{
		detail::check(spoke_actor_use_transport(get(), name.c_str(), timeout_ms),
			      "use transport " + name);
	}
	/* spoke_actor_init_rdma: insists on RDMA, throws SPOKE_ERDMA if it
	 * cannot work between these ends (see Client::initRDMA for the
	 * seed's bool form). */
	void initRDMA(int timeout_ms = 0) const
	{
		detail::check(spoke_actor_init_rdma(get(), timeout_ms), "init RDMA");
	}
	void setPoll(int poll_us) const { spoke_actor_set_poll(get(), poll_us); }

	explicit operator bool() const noexcept { return core_ != nullptr; }
	spoke_actor *get() const
	{
		if (!core_)
			throw Error(SPOKE_EINVAL, "spoke::ActorHandle: empty (moved from)");
		return core_->a;
	}

private:
	template <class Req> static std::vector<uint8_t> packed_request(const Req &req)
	{
		std::vector<uint8_t> packed(256);
		for (;;) { // pack into a buffer that grows until the request fits
			spoke_buf b;
			spoke_buf_init(&b, packed.data(), packed.size());
			MessageWriter w(&b);
			Serializer<Req>::PackTo(w, req);
			if (w.error() == 0) {
				packed.resize(w.size());
				return packed;
			}
			if (w.error() != SPOKE_ETOOBIG && w.error() != SPOKE_ENOSPC)
				detail::check(w.error(), "packing the request");
			if (packed.size() >= (size_t{ 1 } << 31))
				throw Error(SPOKE_ETOOBIG, "packing the request: over 2 GiB");
			packed.resize(packed.size() * 4);
		}
	}

	std::shared_ptr<detail::ActorCore> core_;
};

// ---- the client -----------------------------------------------------------------

struct ResourceSpec {
	uint32_t num_gpus = 0; /* GPUs per actor */
	uint32_t num_cpus = 0; /* CPUs per actor (bookkeeping only) */
};

struct SpawnOptions {
	std::string module;  /* actor module (.so) with the type; empty: the agent's */
	std::string program; /* or a user program linking it; empty: the stock worker */
	ResourceSpec res;    /* for spawnRemote; a gang slot brings its own */
	int poll_us = -1;    /* the worker's spin budget; -1: $SPOKE_POLL_US or 0 */
	int timeout_ms = 0;  /* until the spawn is acknowledged; 0: client default */
	uint32_t max_restarts = 0;       /* restarts after a death (spoke_spawn_opts) */
	uint32_t restart_backoff_ms = 0; /* waiting this long before each */
};

struct ClientOptions {
	std::string hub;    /* "host:port"; empty: $SPOKE_HUB */
	std::string token;  /* empty: $SPOKE_TOKEN, else the file $SPOKE_TOKEN_FILE */
	int timeout_ms = 0; /* 0: $SPOKE_TIMEOUT_MS or 10 s */
	int poll_us = -1;   /* -1: $SPOKE_POLL_US, else 0 (block) */
	bool rdma = true;   /* false: handles never stay on RDMA (TCP instead) */
};

struct Slot {
	uint32_t rank = 0;       /* global rank in the gang */
	uint32_t node_rank = 0;  /* its gang node: rank / per_node */
	uint32_t local_rank = 0; /* its index there: rank % per_node */
	std::string node;        /* where it is placed */
	std::vector<int> gpus;   /* the GPUs it is pinned to */
};

struct NodeInfo {
	std::string name;
	uint32_t num_gpus = 0;
	uint32_t free_gpus = 0;
};

namespace detail {
struct ClientCore {
	spoke_client *c = nullptr;
	bool rdma = true;
	std::mutex m; /* guards the two maps */
	std::unordered_map<std::string, std::shared_ptr<ActorCore>> actors;
	std::unordered_map<uint64_t, spoke_ticket *> tickets;

	ClientCore() = default;
	ClientCore(const ClientCore &) = delete;
	ClientCore &operator=(const ClientCore &) = delete;
	~ClientCore()
	{
		actors.clear(); // handles in use elsewhere stay open (and the C client with them)
		spoke_client_close(c); // frees the tickets still held
	}

	std::shared_ptr<ActorCore> open(const std::string &name, int timeout_ms)
	{
		spoke_actor *a = nullptr;

		check(spoke_actor_open(c, name.c_str(), &a, timeout_ms), "open actor '" + name + "'");
		auto core = std::make_shared<ActorCore>(a);
		if (!rdma && std::strcmp(spoke_actor_transport(a), "rdma") == 0)
			check(spoke_actor_use_transport(a, "tcp", timeout_ms),
			      "move actor '" + name + "' off RDMA");
		return core;
	}
	/* The handle callRemote uses for name, opened the first time. */
	std::shared_ptr<ActorCore> cached(const std::string &name)
	{
		{
			std::lock_guard<std::mutex> g(m);
			auto it = actors.find(name);
			if (it != actors.end())
				return it->second;
		}
		auto core = open(name, 0);
		std::lock_guard<std::mutex> g(m);
		return actors.emplace(name, std::move(core)).first->second; // first one wins
	}
	/* After SPOKE_EDEAD: the actor is gone (or restarted); next time, ask again. */
	void forget(const std::string &name, const std::shared_ptr<ActorCore> &core)
	{
		std::lock_guard<std::mutex> g(m);
		auto it = actors.find(name);
		if (it != actors.end() && it->second == core)
			actors.erase(it);
	}
	spoke_ticket *ticket(uint64_t id)
	{
		std::lock_guard<std::mutex> g(m);
		auto it = tickets.find(id);
		if (it == tickets.end())
			throw Error(SPOKE_ENOTICKET, "gang ticket " + std::to_string(id) +
							     ": not held by this client (released already?)");
		return it->second;
	}
};
} // namespace detail

/* A reserved gang (spoke_ticket): num_members slots, released (its actors
 * stopped) when this object goes, by release(), or with its client.
 * Move-only. */
class GangAllocation {
public:
	uint64_t ticket_id = 0;
	int num_members = 0;
	std::vector<Slot> slots;

	GangAllocation() = default;
	GangAllocation(GangAllocation &&o) noexcept
		: ticket_id(o.ticket_id), num_members(o.num_members), slots(std::move(o.slots)),
		  owner_(std::move(o.owner_))
	{
		o.owner_.reset();
	}
	GangAllocation &operator=(GangAllocation &&o) noexcept
	{
		if (this != &o) {
			releaseQuietly();
			ticket_id = o.ticket_id;
			num_members = o.num_members;
			slots = std::move(o.slots);
			owner_ = std::move(o.owner_);
			o.owner_.reset();
		}
		return *this;
	}
	GangAllocation(const GangAllocation &) = delete;
	GangAllocation &operator=(const GangAllocation &) = delete;
	~GangAllocation() { releaseQuietly(); }

	/* Stops the gang's actors and frees its slots (spoke_gang_release). */
	void release(int timeout_ms = 0)
	{
		auto core = owner_.lock();
		owner_.reset();
		if (!core)
			return; // its client is closed: the hub released it then
		spoke_ticket *t;
		{
			std::lock_guard<std::mutex> g(core->m);
			auto it = core->tickets.find(ticket_id);
			if (it == core->tickets.end())
				return;
			t = it->second;
			core->tickets.erase(it);
		}
		int rc = spoke_gang_release(core->c, t, timeout_ms);
		if (rc == SPOKE_ETIMEDOUT || rc == SPOKE_EHUB) { // t still held: release() again
			std::lock_guard<std::mutex> g(core->m);
			core->tickets.emplace(ticket_id, t);
			owner_ = core;
		}
		if (rc != SPOKE_ENOTICKET)
			detail::check(rc, "release gang ticket " + std::to_string(ticket_id));
	}

private:
	friend class Client;
	std::weak_ptr<detail::ClientCore> owner_;

	void releaseQuietly() noexcept
	{
		try {
			release();
		} catch (const std::exception &e) {
			std::fprintf(stderr, "spoke: releasing gang ticket %llu: %s\n",
				     static_cast<unsigned long long>(ticket_id), e.what());
		}
	}
};

/* A connection to the job's hub (spoke_client), closed by the destructor:
 * then the hub releases its gangs; handles opened from it go on working.
 * Thread-safe.  Move-only. */
class Client {
public:
	/* All from the environment, like the C client: $SPOKE_HUB, the token
	 * from $SPOKE_TOKEN or $SPOKE_TOKEN_FILE. */
	Client() : Client(ClientOptions{}) {}
	/* The hub at host:port; the token from the environment.  rdma false
	 * keeps calls off RDMA (TCP, or shared memory on the same node). */
	Client(const std::string &host, int port, bool rdma = true)
		: Client(ClientOptions{ host + ":" + std::to_string(port), {}, 0, -1, rdma })
	{
	}
	explicit Client(const ClientOptions &o) : core_(std::make_shared<detail::ClientCore>())
	{
		spoke_client_opts opts{ o.hub.empty() ? nullptr : o.hub.c_str(),
					o.token.empty() ? nullptr : o.token.c_str(), o.timeout_ms,
					o.poll_us };
		detail::check(spoke_client_open(&core_->c, &opts),
			      "connect to the hub" + (o.hub.empty() ? std::string() : " at " + o.hub));
		core_->rdma = o.rdma;
	}
	Client(Client &&) noexcept = default;
	Client &operator=(Client &&) noexcept = default;
	Client(const Client &) = delete;
	Client &operator=(const Client &) = delete;

	/* Starts actor name of type on a node with room; returns once its init
	 * ran (spoke_spawn). */
	void spawnRemote(const std::string &type, const std::string &name,
			 const std::string &args = {}, const SpawnOptions &o = {})
	{
		spoke_spawn_opts so = spawnOpts(o);
		detail::check(spoke_spawn(c(), type.c_str(), name.c_str(), args.data(), args.size(),
					  &so),
			      "spawn " + type + " '" + name + "'");
	}
	void kill(const std::string &name, int timeout_ms = 0)
	{
		detail::check(spoke_kill(c(), name.c_str(), timeout_ms), "kill '" + name + "'");
		std::lock_guard<std::mutex> g(core_->m);
		core_->actors.erase(name);
	}

	/* A handle of its own for calling actor name (spoke_actor_open). */
	ActorHandle actor(const std::string &name, int timeout_ms = 0)
	{
		return ActorHandle(core().open(name, timeout_ms));
	}

	/* Calls method of actor name with req.  Synchronous (spoke_call_obj on
	 * a handle this client keeps per actor name): the request is packed
	 * straight into the transport's send buffer and the reply unpacked in
	 * place, with no limit on its size to guess; the future is complete
	 * when returned, get() gives the reply or throws.  For many calls in
	 * flight on one connection: actor(name).callAsync(). */
	template <class Req, class Resp>
	Future<Resp> callRemote(const std::string &name, uint32_t method, const Req &req,
				int timeout_ms = 0)
	{
		try {
			auto h = core().cached(name);
			try {
				if constexpr (std::is_void_v<Resp>) {
					ActorHandle(h).call<void>(method, req, timeout_ms);
					return Future<void>::ready({});
				} else {
					return Future<Resp>::ready(
						ActorHandle(h).call<Resp>(method, req, timeout_ms));
				}
			} catch (const Error &e) {
				if (e.code() == SPOKE_EDEAD)
					core().forget(name, h);
				throw;
			}
		} catch (...) {
			return Future<Resp>::failed(std::current_exception());
		}
	}

	/* The seed's form: true when calls to actor name take a zero-copy path
	 * (RDMA, or shared memory, which is faster on one node); else it moves
	 * the handle to RDMA, false (spoke_errmsg() says why) if RDMA cannot
	 * work between these ends.  Other failures (no such actor) throw. */
	bool initRDMA(const std::string &name, int timeout_ms = 0)
	{
		auto h = core().cached(name);
		std::string now = spoke_actor_transport(h->a);
		if (now == "rdma" || now == "shm")
			return true;
		if (!core_->rdma)
			return false;
		int rc = spoke_actor_init_rdma(h->a, timeout_ms);
		if (rc == SPOKE_ERDMA || rc == SPOKE_ETRANSPORT)
			return false;
		detail::check(rc, "init RDMA for '" + name + "'");
		return true;
	}

	/* Reserves nodes x per_node slots of res each, all or nothing
	 * (spoke_gang_allocate; strict: each gang node on a node of its own).
	 * The hub answers at once, so the future is complete when returned. */
	Future<GangAllocation> gangAllocate(uint32_t nodes, uint32_t per_node,
					    const ResourceSpec &res = {}, bool strict = true,
					    int timeout_ms = 0)
	{
		try {
			spoke_resources r{ res.num_gpus, res.num_cpus };
			spoke_ticket *t = nullptr;
			detail::check(spoke_gang_allocate(c(), nodes, per_node, &r, strict ? 1 : 0, &t,
							  timeout_ms),
				      "allocate a " + std::to_string(nodes) + "x" +
					      std::to_string(per_node) + " gang");
			GangAllocation g;
			g.ticket_id = t->id;
			g.num_members = static_cast<int>(t->n_slots);
			for (uint32_t i = 0; i < t->n_slots; i++) {
				const spoke_slot &s = t->slots[i];
				g.slots.push_back(Slot{ s.rank, s.node_rank, s.local_rank, s.node,
							std::vector<int>(s.gpus, s.gpus + s.n_gpus) });
			}
			{
				std::lock_guard<std::mutex> lock(core_->m);
				core_->tickets.emplace(t->id, t);
			}
			g.owner_ = core_;
			return Future<GangAllocation>::ready(std::move(g));
		} catch (...) {
			return Future<GangAllocation>::failed(std::current_exception());
		}
	}
	/* Phase two: starts actor name of type in slot rank of the gang,
	 * pinned to the slot's GPUs (spoke_gang_launch). */
	void launchActor(uint64_t ticket_id, uint32_t rank, const std::string &type,
			 const std::string &name, const std::string &args = {},
			 const SpawnOptions &o = {})
	{
		spoke_ticket *t = core().ticket(ticket_id);
		spoke_spawn_opts so = spawnOpts(o);
		detail::check(spoke_gang_launch(c(), t, rank, type.c_str(), name.c_str(), args.data(),
						args.size(), &so),
			      "launch " + type + " '" + name + "' in slot " + std::to_string(rank));
	}
	void launchActor(const GangAllocation &g, uint32_t rank, const std::string &type,
			 const std::string &name, const std::string &args = {},
			 const SpawnOptions &o = {})
	{
		launchActor(g.ticket_id, rank, type, name, args, o);
	}

	/* The live nodes and their GPUs (spoke_nodes). */
	std::vector<NodeInfo> nodes(int timeout_ms = 0)
	{
		std::vector<spoke_node_info> buf(16);
		for (;;) {
			int n = spoke_nodes(c(), buf.data(), buf.size(), timeout_ms);
			detail::check(n, "list nodes");
			if (static_cast<size_t>(n) <= buf.size()) {
				std::vector<NodeInfo> out;
				for (int i = 0; i < n; i++)
					out.push_back({ buf[i].name, buf[i].n_gpus, buf[i].free_gpus });
				return out;
			}
			buf.resize(static_cast<size_t>(n));
		}
	}

	spoke_client *get() const { return c(); }

private:
	std::shared_ptr<detail::ClientCore> core_;

	detail::ClientCore &core() const
	{
		if (!core_)
			throw Error(SPOKE_EINVAL, "spoke::Client: empty (moved from)");
		return *core_;
	}
	spoke_client *c() const { return core().c; }
	static spoke_spawn_opts spawnOpts(const SpawnOptions &o)
	{
		spoke_spawn_opts so = SPOKE_SPAWN_OPTS_INIT;
		so.module = o.module.empty() ? nullptr : o.module.c_str();
		so.program = o.program.empty() ? nullptr : o.program.c_str();
		so.res = { o.res.num_gpus, o.res.num_cpus };
		so.poll_us = o.poll_us;
		so.timeout_ms = o.timeout_ms;
		so.max_restarts = o.max_restarts;
		so.restart_backoff_ms = o.restart_backoff_ms;
		return so;
	}
};

// ---- actors ---------------------------------------------------------------------

namespace detail {
template <class F> struct FnArg;
template <class C, class R, class A> struct FnArg<R (C::*)(A) const> { using type = A; };
template <class C, class R, class A> struct FnArg<R (C::*)(A)> { using type = A; };
template <class R, class A> struct FnArg<R (*)(A)> { using type = A; };
template <class F, class = void> struct HandlerArg : FnArg<F> {};
template <class F>
struct HandlerArg<F, std::void_t<decltype(&F::operator())>> : FnArg<decltype(&F::operator())> {};

constexpr size_t kMaxMethods = 128;
template <class A> struct ActorType;
} // namespace detail

/* The base class of a C++ actor type.  Register methods in
 * registerMethods() (called in the worker once the object is built) with
 * registerMethod(id, handler), where the handler is one of
 *
 *     R (spoke::MessageView req)                   the request in place
 *     R (const Req &req)                           Serializer<Req> unpacks it
 *     void (spoke::MessageView req, spoke::MessageWriter &reply)
 *
 * and R is void (an empty reply) or a type with a Serializer.  A handler
 * that throws fails the call: the caller gets SPOKE_EMETHOD with the
 * exception's what() as the message, and as the method's code a
 * spoke::Error's code, else SPOKE_EMETHOD.
 *
 * The class needs a default constructor, or one taking the spawn's
 * arguments as a spoke::MessageView; both run in the worker before the
 * spawn is acknowledged (an exception fails the spawn: spoke::Error's code,
 * else SPOKE_ESPAWN, its what() in the actor's log).  At most 128 methods. */
class Actor {
public:
	Actor() = default;
	Actor(const Actor &) = delete;
	Actor &operator=(const Actor &) = delete;
	virtual ~Actor() = default;

	virtual void registerMethods() {}

	/* This actor's name and GPUs ("0,1"), in the worker. */
	static std::string selfName()
	{
		const char *n = spoke_self_name();
		return n ? n : "";
	}
	static std::string selfGpus()
	{
		const char *g = spoke_self_gpus();
		return g ? g : "";
	}

protected:
	template <class F> void registerMethod(uint32_t id, F &&f)
	{
		char name[16];
		std::snprintf(name, sizeof(name), "0x%02x", id);
		registerMethod(id, name, std::forward<F>(f));
	}
	template <class F> void registerMethod(uint32_t id, std::string name, F &&f)
	{
		for (const Method &m : methods_)
			if (m.id == id)
				throw Error(SPOKE_EEXIST, "method " + std::to_string(id) +
								  " is registered already");
		if (methods_.size() == detail::kMaxMethods)
			throw Error(SPOKE_ENOSPC, "more than " + std::to_string(detail::kMaxMethods) +
							  " methods");
		methods_.push_back({ id, std::move(name), wrap(std::forward<F>(f)) });
	}

private:
	template <class A> friend struct detail::ActorType;
	using Handler = std::function<void(MessageView &, MessageWriter &)>;
	struct Method {
		uint32_t id;
		std::string name;
		Handler fn;
	};
	std::vector<Method> methods_;

	template <class R> static void reply(MessageWriter &out, const R &r)
	{
		Serializer<std::decay_t<R>>::PackTo(out, r);
	}
	template <class F> static Handler wrap(F &&f)
	{
		using Fn = std::decay_t<F>;
		if constexpr (std::is_invocable_v<Fn &, MessageView, MessageWriter &>) {
			return [fn = Fn(std::forward<F>(f))](MessageView &in, MessageWriter &out) mutable {
				fn(in, out);
			};
		} else if constexpr (std::is_invocable_v<Fn &, MessageView>) {
			return [fn = Fn(std::forward<F>(f))](MessageView &in, MessageWriter &out) mutable {
				using R = std::invoke_result_t<Fn &, MessageView>;
				if constexpr (std::is_void_v<R>)
					fn(in);
				else
					reply(out, fn(in));
			};
		} else {
			using Req = std::decay_t<typename detail::HandlerArg<Fn>::type>;
			return [fn = Fn(std::forward<F>(f))](MessageView &in, MessageWriter &out) mutable {
				Req req = in.read<Req>();
				using R = std::invoke_result_t<Fn &, const Req &>;
				if constexpr (std::is_void_v<R>)
					fn(req);
				else
					reply(out, fn(req));
			};
		}
	}
};

namespace detail {
/* The C actor type behind SPOKE_REGISTER_ACTOR(A, "Name").  The worker
 * builds the object in init and fills the type's method table from its
 * registerMethods(): the C runtime looks a method up in the registered
 * type at each call (never before init), and one worker serves one actor,
 * so the table is that object's. */
template <class A> struct ActorType {
	struct State {
		A *obj;
	};
	static spoke_actor_type &type()
	{
		static spoke_actor_type t{};
		return t;
	}
	static spoke_method *table()
	{
		static spoke_method m[kMaxMethods];
		return m;
	}

	template <size_t I> static int method(void *state, spoke_view *req, spoke_buf *reply) noexcept
	{
		Actor &self = *static_cast<State *>(state)->obj;
		auto &m = self.methods_[I];
		try {
			MessageView in(req);
			MessageWriter out(reply);
			m.fn(in, out);
			return 0;
		} catch (const Error &e) {
			return spoke_method_fail(reply, e.code() < 0 ? e.code() : SPOKE_EMETHOD, "%s",
						 e.what());
		} catch (const std::exception &e) {
			return spoke_method_fail(reply, SPOKE_EMETHOD, "%s", e.what());
		} catch (...) {
			return spoke_method_fail(reply, SPOKE_EMETHOD, "a C++ exception of unknown type");
		}
	}
	template <size_t... I>
	static constexpr std::array<spoke_method_fn, sizeof...(I)> fns(std::index_sequence<I...>)
	{
		return { &method<I>... };
	}

	static int init(void *state, spoke_view *args) noexcept
	{
		try {
			std::unique_ptr<A> obj;
			if constexpr (std::is_constructible_v<A, MessageView>)
				obj = std::make_unique<A>(MessageView(args));
			else
				obj = std::make_unique<A>();
			Actor &self = *obj;
			self.registerMethods();
			static constexpr auto trampolines = fns(std::make_index_sequence<kMaxMethods>{});
			spoke_method *t = table();
			for (size_t i = 0; i < self.methods_.size(); i++)
				t[i] = { self.methods_[i].id, self.methods_[i].name.c_str(), trampolines[i] };
			type().methods = t;
			type().n_methods = self.methods_.size();
			static_cast<State *>(state)->obj = obj.release();
			return 0;
		} catch (const Error &e) {
			std::fprintf(stderr, "spoke: actor type %s: %s\n", type().name, e.what());
			return e.code() < 0 ? e.code() : SPOKE_ESPAWN;
		} catch (const std::exception &e) {
			std::fprintf(stderr, "spoke: actor type %s: %s\n", type().name, e.what());
			return SPOKE_ESPAWN;
		} catch (...) {
			std::fprintf(stderr, "spoke: actor type %s: a C++ exception\n", type().name);
			return SPOKE_ESPAWN;
		}
	}
	static void fini(void *state) noexcept
	{
		delete static_cast<State *>(state)->obj;
	}

	/* At load time (a static initialiser): registers the C type, with no
	 * methods until init. */
	static bool registerType(const char *name) noexcept
	{
		static_assert(std::is_base_of_v<Actor, A>,
			      "SPOKE_REGISTER_ACTOR(Class, \"Name\"): Class must derive from spoke::Actor");
		spoke_actor_type &t = type();
		if (t.name) {
			std::fprintf(stderr, "spoke: one C++ class is registered once: %s is %s already\n",
				     name, t.name);
			return false;
		}
		t.name = name;
		t.state_size = sizeof(State);
		t.init = init;
		t.fini = fini;
		t.methods = nullptr;
		t.n_methods = 0;
		int rc = spoke_actor_type_register(&t);
		if (rc < 0)
			std::fprintf(stderr, "spoke: registering actor type %s: %s\n", name,
				     spoke_errmsg());
		return rc == 0;
	}
};
} // namespace detail

} // namespace spoke

/* SPOKE_REGISTER_ACTOR(MyActor, "MyActor");  registers C++ class MyActor
 * (a spoke::Actor) as actor type "MyActor".  The C form,
 * SPOKE_REGISTER_ACTOR(c_type_var), works here too. */
#undef SPOKE_REGISTER_ACTOR
#define SPOKE_DETAIL_CAT2(a, b) a##b
#define SPOKE_DETAIL_CAT(a, b) SPOKE_DETAIL_CAT2(a, b)
#define SPOKE_DETAIL_PICK(_1, _2, NAME, ...) NAME
#define SPOKE_DETAIL_REGISTER_C(type_var)                                        \
	__attribute__((constructor)) static void spoke_register_##type_var(void) \
	{                                                                        \
		spoke_actor_type_register(&(type_var));                          \
	}
#define SPOKE_DETAIL_REGISTER_CXX(cls, name)                                            \
	[[maybe_unused]] static const bool SPOKE_DETAIL_CAT(spoke_registered_, __COUNTER__) = \
		::spoke::detail::ActorType<cls>::registerType(name)
#define SPOKE_REGISTER_ACTOR(...)                                                         \
	SPOKE_DETAIL_PICK(__VA_ARGS__, SPOKE_DETAIL_REGISTER_CXX, SPOKE_DETAIL_REGISTER_C, ) \
	(__VA_ARGS__)

#endif
