#include <stdio.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-daemon.h>
#include "lib/log.h"
#include "lib/service.h"

static void service_notify(const char *state)
{
	int rc = sd_notify(0, state);

	/* 0: no manager is listening, the common case outside systemd. */
	if (rc < 0)
		log_debug("cannot notify the service manager: %s", strerror(-rc));
}

void service_ready(const char *status)
{
	char state[512];

	snprintf(state, sizeof(state), "READY=1\nSTATUS=%s", status);
	service_notify(state);
}

/* systemd (253 and later, Type=notify-reload) matches a reload to its RELOADING=1 by
 * the monotonic time it carries; older managers ignore the field. */
void service_reloading(void)
{
	struct timespec now;
	char state[96];

	clock_gettime(CLOCK_MONOTONIC, &now);
	snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)now.tv_sec * 1000000ULL + now.tv_nsec / 1000);
	service_notify(state);
}

void service_stopping(void)
{
	service_notify("STOPPING=1\nSTATUS=stopping");
}
