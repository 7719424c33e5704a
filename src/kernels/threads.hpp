#pragma once
// How many threads multi-threaded work (oneDNN's convolutions, recurrent layers and float
// products, OpenBLAS's double products, parallel_chunks) uses, and applying that count to
// OpenMP (this thread's setting) and OpenBLAS before each piece of such work.
//
// By default the count follows the machine: all of the process's CPUs, less the ones other
// processes kept busy over the last quarter of a second (read from /proc/stat, our own CPU
// time taken out). Two threads of a team on two cores beside a third busy process each get
// two thirds of a core and wait on each other at every barrier, where one thread alone gets
// a whole core; tg::set_num_threads fixes the count instead.

namespace tg::threads {

/// The count to use now, applied to this thread's OpenMP setting and to OpenBLAS's; call
/// it right before starting work that is split over threads. Cheap (a clock read) except
/// about four times a second, when it samples the machine's load.
int enter() noexcept;

/// Sets this thread's OpenMP count to n directly (nothing without OpenMP): for one piece of
/// work that should run on fewer threads than enter() gave, which must then set it back.
void set_openmp(int n) noexcept;

/// The count without applying it.
int current() noexcept;

/// Of `cpus` CPUs, how many threads to use when other processes keep `others` of them busy
/// (in cores, averaged), starting from `now` threads: a core is given up when others use
/// at least 0.55 of it, and taken back when they use at most 0.35, so that a load near
/// half a core does not switch the count at every sample. Between 1 and `cap`.
int choose(int cap, int cpus, double others, int now) noexcept;

}  // namespace tg::threads
