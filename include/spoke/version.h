/* spoke/version.h - library version. */
#ifndef SPOKE_VERSION_H
#define SPOKE_VERSION_H

#define SPOKE_VERSION_MAJOR 0
#define SPOKE_VERSION_MINOR 1
#define SPOKE_VERSION_PATCH 0
#define SPOKE_VERSION_STRING "0.1.0"

/* Version of the wire protocol; peers of another version are refused.
 * 2: the handshake names the server meant and binds both nonces and roles.
 * 3: a 32-byte header carrying a call's deadline (ttl_ms); CHUNK and
 *    CANCEL frames, a CALL's stream flag. */
#define SPOKE_PROTOCOL_VERSION 4

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library actually linked, "MAJOR.MINOR.PATCH". */
#include <spoke/export.h>
SPOKE_API const char *spoke_version(void);

#ifdef __cplusplus
}
#endif
#endif
