/* This machine's interfaces and their addresses, as getifaddrs() lists them. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/local_interfaces.h"

static void append_addresses(FILE *out, struct ifaddrs *all, const char *name)
{
	char text[INET6_ADDRSTRLEN];
	int n = 0;

	for (struct ifaddrs *a = all; a; a = a->ifa_next) {
		const void *addr;

		if (strcmp(a->ifa_name, name) || !a->ifa_addr)
			continue;
		if (a->ifa_addr->sa_family == AF_INET)
			addr = &((struct sockaddr_in *)a->ifa_addr)->sin_addr;
		else if (a->ifa_addr->sa_family == AF_INET6)
			addr = &((struct sockaddr_in6 *)a->ifa_addr)->sin6_addr;
		else
			continue;
		if (inet_ntop(a->ifa_addr->sa_family, addr, text, sizeof(text)))
			fprintf(out, "%s%s", n++ ? ", " : "", text);
	}
	if (!n)
		fputs("no address", out);
}

/* getifaddrs() lists an interface once per address: the first entry of each name. */
static bool first_of_name(struct ifaddrs *all, struct ifaddrs *entry)
{
	for (struct ifaddrs *a = all; a != entry; a = a->ifa_next)
		if (!strcmp(a->ifa_name, entry->ifa_name))
			return false;
	return true;
}

char *local_interfaces_text(void)
{
	struct ifaddrs *all = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	int n = 0;

	if (!out)
		return NULL;
	if (getifaddrs(&all) == 0) {
		for (struct ifaddrs *a = all; a; a = a->ifa_next) {
			if ((a->ifa_flags & IFF_LOOPBACK) || !first_of_name(all, a))
				continue;
			fprintf(out, "%s%s (", n++ ? ", " : "", a->ifa_name);
			append_addresses(out, all, a->ifa_name);
			fputc(')', out);
		}
		freeifaddrs(all);
	}
	if (!n)
		fputs("none found", out);
	fclose(out);
	return text;
}
