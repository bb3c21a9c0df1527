#!/bin/bash
# install.sh - `make install` into a scratch root, then build a program
# against the installed Spoke with pkg-config and with CMake's
# find_package(Spoke), and run it (it calls spoke_version() and the
# serializer); then, where the build has a C++17 compiler, the same for a
# C++ program over spoke/spoke.hpp (the CMake one through the original
# Spoke's target names, Spoke::core Spoke::agent); and the installed Python
# package calls an actor.  Skips (77) without cmake.
set -u
command -v cmake >/dev/null || { echo "SKIP: cmake is not installed"; exit 77; }
root=$(mktemp -d /tmp/spoke-install.XXXXXX)
trap 'rm -rf "$root"' EXIT
make -s -C "$SPOKE_BUILDDIR" install DESTDIR="$root" >"$root/install.log" 2>&1 ||
	{ cat "$root/install.log"; echo "FAIL: make install"; exit 1; }
prefix=$(sed -n 's/^prefix=//p' "$SPOKE_BUILDDIR/contrib/spoke.pc")
# A sanitizer build's library needs the sanitizer runtime in the program too.
san=$(sed -n 's/^SAN_CFLAGS = //p' "$SPOKE_BUILDDIR/Makefile")
pfx=$root$prefix
for f in include/spoke/spoke.h include/spoke/spoke.hpp lib/libspoke.so lib/libspoke.a lib/pkgconfig/spoke.pc \
	lib/cmake/Spoke/SpokeConfig.cmake bin/spoke-hub bin/spoke-agent bin/spoke-worker bin/spoke-status \
	share/man/man1/spoke-hub.1 share/man/man1/spoke-status.1; do
	[ -e "$pfx/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
cat >"$root/app.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <spoke/spoke.h>
int main(void)
{
	unsigned char mem[32];
	spoke_buf b;
	spoke_view v;
	uint32_t x = 0;
	spoke_buf_init(&b, mem, sizeof(mem));
	spoke_buf_put_u32(&b, 42);
	spoke_view_init(&v, mem, b.len);
	spoke_view_get_u32(&v, &x);
	printf("spoke %s %u\n", spoke_version(), x);
	return x == 42 && !strcmp(spoke_version(), SPOKE_VERSION_STRING) ? 0 : 1;
}
C
# pkg-config
flags=$(PKG_CONFIG_PATH=$pfx/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root pkg-config --cflags --libs spoke) ||
	{ echo "FAIL: pkg-config spoke"; exit 1; }
# shellcheck disable=SC2086
cc $san "$root/app.c" $flags -o "$root/app-pc" || { echo "FAIL: build with pkg-config"; exit 1; }
LD_LIBRARY_PATH=$pfx/lib "$root/app-pc" || { echo "FAIL: run (pkg-config)"; exit 1; }
# CMake
mkdir -p "$root/cm"
cat >"$root/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.13)
project(app C)
find_package(Spoke REQUIRED)
add_executable(app ../app.c)
target_link_libraries(app PRIVATE Spoke::spoke)
CM
(cd "$root/cm" && cmake -S . -B build -DCMAKE_PREFIX_PATH="$pfx" -DCMAKE_C_FLAGS="$san" >cmake.log 2>&1 &&
	cmake --build build >>cmake.log 2>&1) || { cat "$root/cm/cmake.log"; echo "FAIL: CMake build"; exit 1; }
LD_LIBRARY_PATH=$pfx/lib "$root/cm/build/app" || { echo "FAIL: run (CMake)"; exit 1; }

# Python: the installed package (make install's site-packages) imports,
# finds the installed libspoke by itself, and calls an actor of a job run
# by the installed spoke-launch --local (the build's test actor module), and
# an actor written in Python served by the installed spoke-worker-python.
python=$(sed -n 's/^PYTHON = //p' "$SPOKE_BUILDDIR/Makefile")
pypkg=$(ls -d "$pfx"/lib/python3*/*-packages/spoke 2>/dev/null | head -n1)
if [ -z "$python" ] || [ "$python" = ":" ]; then
	echo "# SKIP Python: configure found no python3"
else
	[ -n "$pypkg" ] && [ -e "$pypkg/_paths.py" ] ||
		{ echo "FAIL: the Python package is not installed under $pfx/lib/python3*"; exit 1; }
	pyenv=(env -u SPOKE_LIBRARY PYTHONPATH="$(dirname "$pypkg")" PYTHONDONTWRITEBYTECODE=1)
	if [ -n "$san" ]; then # the sanitizer runtime first, Python's own leaks unreported
		cc=$(sed -n 's/^CC = //p' "$SPOKE_BUILDDIR/Makefile")
		pre=$(${cc:-cc} -print-file-name=libasan.so):$(${cc:-cc} -print-file-name=libubsan.so)
		pyenv+=(LD_PRELOAD="$pre" ASAN_OPTIONS=detect_leaks=0)
	fi
	[ -x "$pfx/bin/spoke-worker-python" ] && [ -e "$pfx/share/man/man1/spoke-worker-python.1" ] ||
		{ echo "FAIL: spoke-worker-python or its man page is not installed"; exit 1; }
	cat >"$root/drive.py" <<PY
import spoke
assert spoke.library_path.startswith("$pfx/lib/"), spoke.library_path
with spoke.Client() as c:
    c.spawn("Probe", "py-installed")
    with c.actor("py-installed") as a:
        r = a.call(1, b"hello from the installed package")
    with c.actor("inst-0") as a:  # an actor in Python, the installed spoke-worker-python
        r2 = a.call(1, b"hi")
assert r == b"hello from the installed package", r
assert r2 == b"Python says hi", r2
print("spoke %s from Python (%s): called a C actor and a Python one"
      % (spoke.__version__, spoke.library_path))
PY
	cat >"$root/inst_actor.py" <<PY
import spoke

@spoke.actor("InstEcho")
class Echo:
    def __init__(self, args):
        pass

    @spoke.method(1)
    def hello(self, req):
        return b"Python says " + bytes(req)
PY
	"${pyenv[@]}" "$python" -c "import spoke" || { echo "FAIL: import spoke (installed)"; exit 1; }
	if [ -x "$pfx/bin/spoke-launch" ]; then
		printf '#!/bin/sh\nexec %s %s "%s"\n' "$(printf "'%s' " "${pyenv[@]}")" "'$python'" \
			"$root/drive.py" >"$root/drive.sh"
		chmod +x "$root/drive.sh"
		printf 'name: py-install\ngang: 1x1\nmodules: [%s]\ndriver: %s\n' \
			"$SPOKE_BUILDDIR/tests/harness/.libs/testactor.so" "$root/drive.sh" >"$root/py.yaml"
		# the workers find the installed package on the job's PYTHONPATH (a
		# DESTDIR install is not where the script looks), the class beside the job
		printf 'env:\n  PYTHONPATH: "%s"\nactors:\n  - {name: inst, python: "inst_actor:Echo"}\n' \
			"$(dirname "$pypkg")" >>"$root/py.yaml"
		"$pfx/bin/spoke-launch" --local --log-dir "$root/pylogs" "$root/py.yaml" ||
			{ echo "FAIL: the installed Python package calling an actor"; exit 1; }
	else
		echo "# Python: imported; no installed spoke-launch (libyaml) to run a job with"
	fi
fi

# C++ (include/spoke/spoke.hpp), with the build's C++ compiler.
cxx=$(sed -n 's/^CXX = //p' "$SPOKE_BUILDDIR/Makefile")
if [ -z "$cxx" ] || ! echo 'int main() {}' | $cxx -std=c++17 -x c++ - -o "$root/cxx-probe" 2>/dev/null; then
	echo "PASS: installed headers, libraries, pkg-config and CMake config work (C only: no C++17 compiler)"
	exit 0
fi
cat >"$root/app.cpp" <<'CXX'
#include <cstdio>
#include <spoke/spoke.hpp>
class Echo : public spoke::Actor {
public:
	void registerMethods() override
	{
		registerMethod(1, [](const std::string &s) { return s; });
	}
};
SPOKE_REGISTER_ACTOR(Echo, "Echo");
int main()
{
	unsigned char mem[64];
	spoke_buf b;
	spoke_buf_init(&b, mem, sizeof(mem));
	spoke::MessageWriter w(&b);
	w << std::vector<double>{ 1.5, 2.5 } << std::string("x");
	spoke::MessageView v(mem, w.size());
	auto d = v.read<std::vector<double>>();
	bool good = d.size() == 2 && d[1] == 2.5 && v.read<std::string>() == "x" &&
		    spoke_actor_type_find("Echo") != nullptr;
	try {
		spoke::Client c("127.0.0.1", 1, true);
		good = false;
	} catch (const spoke::Error &e) {
		good = good && (e.code() == SPOKE_EHUB || e.code() == SPOKE_EAUTH);
	}
	std::printf("spoke %s from C++: %s\n", spoke_version(), good ? "ok" : "wrong");
	return good ? 0 : 1;
}
CXX
# shellcheck disable=SC2086
$cxx -std=c++17 $san "$root/app.cpp" $flags -o "$root/app-pc-cxx" ||
	{ echo "FAIL: C++ build with pkg-config"; exit 1; }
LD_LIBRARY_PATH=$pfx/lib "$root/app-pc-cxx" || { echo "FAIL: run (C++, pkg-config)"; exit 1; }
mkdir -p "$root/cmxx"
cat >"$root/cmxx/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.13)
project(app CXX)
find_package(Spoke REQUIRED)
add_executable(app ../app.cpp)
target_link_libraries(app PUBLIC Spoke::core Spoke::agent)
CM
(cd "$root/cmxx" && cmake -S . -B build -DCMAKE_PREFIX_PATH="$pfx" -DCMAKE_CXX_COMPILER="$cxx" \
	-DCMAKE_CXX_FLAGS="$san" >cmake.log 2>&1 && cmake --build build >>cmake.log 2>&1) ||
	{ cat "$root/cmxx/cmake.log"; echo "FAIL: C++ CMake build"; exit 1; }
LD_LIBRARY_PATH=$pfx/lib "$root/cmxx/build/app" || { echo "FAIL: run (C++, CMake)"; exit 1; }
echo "PASS: installed headers, libraries, pkg-config and CMake config work, from C and C++"
