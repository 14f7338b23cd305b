/* Streams with sequence numbers, to prove that nothing is lost, duplicated or misjudged
 * while the gateway changes underneath them.
 *   seqstream send ADDR PORT PPS        UDP until SIGINT/SIGTERM, then prints "sent N"
 *   seqstream recv PORT IDLE_SECONDS    UDP until idle or SIGINT/SIGTERM, then prints
 *                                       "received N lost N duplicated N reordered N highest N"
 *   seqstream tcp-send ADDR PORT KBPS   TCP: 32-bit counters until SIGINT/SIGTERM,
 *                                       then prints "sent N bytes"
 *   seqstream tcp-recv PORT             TCP: checks every counter, prints
 *                                       "received N bytes errors N" at the end of stream */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEQUENCE (1u << 24)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: seqstream send ADDR PORT PPS | recv PORT IDLE_SECONDS | "
		"tcp-send ADDR PORT KBPS | tcp-recv PORT\n");
	return 2;
}

static int send_stream(const char *addr, const char *port, long pps)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai;
	struct timespec gap = { 0, 1000000000L / pps };
	uint32_t seq = 0;
	char payload[64] = { 0 };
	int fd;

	if (getaddrinfo(addr, port, &hints, &ai))
		return usage();
	fd = socket(ai->ai_family, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		perror("seqstream: socket");
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!stop && seq < MAX_SEQUENCE) {
		uint32_t wire = htonl(seq);

		memcpy(payload, &wire, sizeof(wire));
		/* a full socket buffer is a local matter, not the gateway's: retry it */
		if (send(fd, payload, sizeof(payload), 0) < 0) {
			if (errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED) {
				perror("seqstream: send");
				return 1;
			}
			if (errno != ECONNREFUSED)
				continue;
		}
		seq++;
		nanosleep(&gap, NULL);
	}
	printf("sent %u\n", seq);
	freeaddrinfo(ai);
	return 0;
}

static int receive_stream(const char *port, int idle)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(port)) };
	struct timeval timeout = { .tv_sec = idle };
	uint8_t *seen = calloc(MAX_SEQUENCE, 1);
	unsigned long received = 0, duplicated = 0, reordered = 0, lost = 0;
	long highest = -1;
	int fd = socket(AF_INET6, SOCK_DGRAM, 0), off = 0, rcvbuf = 16 << 20;

	struct sigaction stop_action = { .sa_handler = on_signal }; /* no SA_RESTART: recv returns */

	if (!seen || fd < 0)
		return 1;
	sigaction(SIGINT, &stop_action, NULL);
	sigaction(SIGTERM, &stop_action, NULL);
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	/* Seconds of the stream fit the socket: a receiver starved of CPU on a busy machine
	 * loses nothing that reached it (as root, past net.core.rmem_max). */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("seqstream: bind");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		char buf[256];
		ssize_t n;
		uint32_t seq;

		/* wait for the first datagram as long as it takes, then stop when idle */
		if (received)
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 || stop)
			break;
		if (n < 4)
			continue;
		memcpy(&seq, buf, sizeof(seq));
		seq = ntohl(seq);
		if (seq >= MAX_SEQUENCE)
			continue;
		received++;
		if (seen[seq]++)
			duplicated++;
		else if ((long)seq < highest)
			reordered++;
		if ((long)seq > highest)
			highest = seq;
	}
	for (long s = 0; s <= highest; s++)
		lost += !seen[s];
	printf("received %lu lost %lu duplicated %lu reordered %lu highest %ld\n", received, lost,
	       duplicated, reordered, highest);
	free(seen);
	return 0;
}

static int tcp_send(const char *addr, const char *port, long kbps)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	/* 1 KiB chunks at the asked rate */
	struct timespec gap = { 0, 1000000000L / (kbps > 0 ? kbps : 1) };
	uint32_t chunk[256], counter = 0;
	unsigned long long sent = 0;
	int fd;

	if (getaddrinfo(addr, port, &hints, &ai))
		return usage();
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		perror("seqstream: connect");
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	while (!stop) {
		for (size_t i = 0; i < 256; i++)
			chunk[i] = htonl(counter++);
		if (send(fd, chunk, sizeof(chunk), 0) != (ssize_t)sizeof(chunk)) {
			perror("seqstream: send");
			return 1;
		}
		sent += sizeof(chunk);
		nanosleep(&gap, NULL);
	}
	shutdown(fd, SHUT_WR);
	printf("sent %llu bytes\n", sent);
	close(fd);
	freeaddrinfo(ai);
	return 0;
}

static int tcp_receive(const char *port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(port)) };
	unsigned long long received = 0, errors = 0;
	uint32_t expect = 0, word;
	uint8_t partial[4];
	size_t have = 0;
	int lfd = socket(AF_INET6, SOCK_STREAM, 0), fd, off = 0, on = 1;

	setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1)) {
		perror("seqstream: bind");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	fd = accept(lfd, NULL, NULL);
	for (;;) {
		uint8_t buf[65536];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n <= 0)
			break;
		received += (unsigned long long)n;
		for (ssize_t i = 0; i < n; i++) {
			partial[have++] = buf[i];
			if (have < 4)
				continue;
			memcpy(&word, partial, 4);
			if (ntohl(word) != expect)
				errors++;
			expect = ntohl(word) + 1;
			have = 0;
		}
	}
	printf("received %llu bytes errors %llu\n", received, errors);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "tcp-send") && atol(argv[4]) > 0)
		return tcp_send(argv[2], argv[3], atol(argv[4]));
	if (argc == 3 && !strcmp(argv[1], "tcp-recv"))
		return tcp_receive(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "send") && atol(argv[4]) > 0)
		return send_stream(argv[2], argv[3], atol(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "recv") && atoi(argv[3]) > 0)
		return receive_stream(argv[2], atoi(argv[3]));
	return usage();
}
