/* version.c - spoke_version(). */
#include <spoke/version.h>

const char *spoke_version(void)
{
	return SPOKE_VERSION_STRING;
}
