/* gpus.h - finding this node's GPUs: the /dev/nvidiaN devices, for the
 * agent and spoke-launch's local agent when neither --gpus nor
 * CUDA_VISIBLE_DEVICES names them.  (Lists such as CUDA_VISIBLE_DEVICES
 * are parsed by spk_gpu_list_parse in libspoke, or by the SPANK plugin,
 * which keeps Slurm's entries as they are: indexes or UUIDs.) */
#ifndef SPOKE_COMMON_GPUS_H
#define SPOKE_COMMON_GPUS_H

#include <stdint.h>

/* The numbers N of the entries /dev/nvidiaN (N decimal digits
 * only: not nvidiactl, nvidia-uvm), ascending, at most cap of them (the
 * lowest).  Returns how many; 0 where there are none or /dev cannot be
 * read. */
unsigned spk_gpu_scan(int32_t *ids, unsigned cap);

#endif
