/* spoke/spoke.h - the whole public API of libspoke. */
#ifndef SPOKE_SPOKE_H
#define SPOKE_SPOKE_H

#include <spoke/version.h>
#include <spoke/errors.h>
#include <spoke/serializer.h>
#include <spoke/actor.h>
#include <spoke/client.h>

#endif
