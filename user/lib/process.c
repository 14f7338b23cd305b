#include <errno.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include "lib/process.h"

int process_forbid_core_dumps(void)
{
	const struct rlimit none = { 0, 0 };

	/* Not dumpable: no core file, and no ptrace or /proc/PID/mem for other users.
	 * RLIMIT_CORE too, since exec makes a process dumpable again and what we start
	 * (swanctl, fed the same secrets) inherits the limit. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) || setrlimit(RLIMIT_CORE, &none))
		return -errno;
	return 0;
}
