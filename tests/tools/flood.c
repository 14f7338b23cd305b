/* Opens new UDP flows as fast as one socket can send them: each datagram goes to the next
 * destination port of DST (then the next address after it), so that every packet is a
 * flow nobody answered, for tests of what a flood leaves to other VMs.
 *   flood DST SECONDS [ADDRESSES]
 * Prints "sent N packets in S s: R packets/s to F flows". */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define BATCH 64
#define FIRST_PORT 1024

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sockaddr_in to[BATCH];
	struct mmsghdr msgs[BATCH];
	struct iovec iov = { .iov_base = "flood", .iov_len = 5 };
	uint32_t base, addresses, flow = 0, flows;
	unsigned long long sent = 0;
	double seconds, start, elapsed;
	int fd;

	if (argc < 3 || inet_pton(AF_INET, argv[1], &base) != 1 || atof(argv[2]) <= 0) {
		fprintf(stderr, "usage: flood DST SECONDS [ADDRESSES]\n");
		return 2;
	}
	seconds = atof(argv[2]);
	addresses = argc > 3 ? (uint32_t)atoi(argv[3]) : 1;
	if (!addresses)
		addresses = 1;
	flows = addresses * (65536 - FIRST_PORT);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	memset(msgs, 0, sizeof(msgs));
	start = now_s();
	do {
		for (int i = 0; i < BATCH; i++, flow = (flow + 1) % flows) {
			to[i] = (struct sockaddr_in){ .sin_family = AF_INET };
			to[i].sin_addr.s_addr = htonl(ntohl(base) + flow / (65536 - FIRST_PORT));
			to[i].sin_port = htons(FIRST_PORT + flow % (65536 - FIRST_PORT));
			msgs[i].msg_hdr.msg_name = &to[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(to[i]);
			msgs[i].msg_hdr.msg_iov = &iov;
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		int n = sendmmsg(fd, msgs, BATCH, 0);

		if (n > 0)
			sent += n;
		else if (errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED &&
			 errno != EPERM)
			perror("sendmmsg");
		elapsed = now_s() - start;
	} while (elapsed < seconds);
	printf("sent %llu packets in %.1f s: %.0f packets/s to %llu flows\n", sent, elapsed,
	       sent / elapsed, sent < flows ? sent : (unsigned long long)flows);
	close(fd);
	return 0;
}
