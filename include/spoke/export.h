/* spoke/export.h - symbol visibility of the public API. */
#ifndef SPOKE_EXPORT_H
#define SPOKE_EXPORT_H

#if defined(__GNUC__)
#define SPOKE_API __attribute__((visibility("default")))
#else
#define SPOKE_API
#endif

#endif
