/* tsan.c - in --enable-tsan builds only: what gcc 12's ThreadSanitizer
 * misses.  It does not intercept pthread_mutex_clocklock (glibc 2.30), so it
 * never sees the lock taken: every access under it looks like a race and its
 * unlock like the unlock of an unlocked mutex.  This definition, hidden like
 * all of libspoke's, serves libspoke's own calls: it takes glibc's lock and
 * tells ThreadSanitizer, with the annotations of <sanitizer/tsan_interface.h>. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include <sanitizer/tsan_interface.h>

typedef int clocklock_fn(pthread_mutex_t *, clockid_t, const struct timespec *);

static clocklock_fn *real_clocklock;

__attribute__((constructor)) static void find_clocklock(void)
{
	real_clocklock = (clocklock_fn *)dlsym(RTLD_NEXT, "pthread_mutex_clocklock");
}

int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clock, const struct timespec *abstime)
{
	int rc;

	if (!real_clocklock)
		return ENOSYS;
	__tsan_mutex_pre_lock(m, __tsan_mutex_try_lock);
	rc = real_clocklock(m, clock, abstime);
	__tsan_mutex_post_lock(m, rc ? __tsan_mutex_try_lock | __tsan_mutex_try_lock_failed
				     : __tsan_mutex_try_lock, 0);
	return rc;
}
