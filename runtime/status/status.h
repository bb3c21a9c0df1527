/* status.h - spoke-status: what its parts share. */
#ifndef SPK_STATUS_TOOL_H
#define SPK_STATUS_TOOL_H

#include <stdio.h>

#include "proto.h"

/* status_print.c: the hub's STATUS answer as text (a table per list), as
 * one JSON object, or in Prometheus' text exposition format.  0, or
 * -ENOMEM. */
int spk_status_print_text(FILE *f, const struct spk_status *s);
int spk_status_print_json(FILE *f, const struct spk_status *s);
int spk_status_print_prometheus(FILE *f, const struct spk_status *s);

#endif
