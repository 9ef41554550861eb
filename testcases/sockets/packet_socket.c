/*
 * A packet socket (AF_PACKET, SOCK_RAW) bound to the loopback interface for
 * the local experimental EtherType 0x88b5. (An engine test expects the dump
 * of this program to fail cleanly; as a ZDTM program it checks the socket
 * all the same.) After restore the fd is still an AF_PACKET SOCK_RAW socket
 * with the same flags, bound to lo and that protocol, and it is usable: a
 * frame it sends on lo, carrying this run's pid and a random token, comes
 * back on it (frames of other runs are skipped).
 */
#include <net/ethernet.h>
#include <net/if.h>
#include <netpacket/packet.h>

#include "sockcheck.h"

const char *test_doc = "a packet socket is still open, bound and usable";

#define PROTO 0x88b5   /* ETH_P_802_EX1, local experimental */

int main(int argc, char **argv)
{
	struct sockaddr_ll sll = { 0 }, got;
	socklen_t len = sizeof(got);
	struct sockstate was;
	unsigned char frame[ETH_ZLEN + 64], buf[2048];
	char token[48];
	int fd, ifindex, n, bad = 0;
	double deadline;

	test_init(argc, argv);
	ifindex = if_nametoindex("lo");
	fd = socket(AF_PACKET, SOCK_RAW, htons(PROTO));
	if (fd < 0) {
		fail("socket(AF_PACKET, SOCK_RAW) (CAP_NET_RAW is needed)");
		return 1;
	}
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(PROTO);
	sll.sll_ifindex = ifindex;
	if (!ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		pr_perror("bind the packet socket to lo");
		return 1;
	}
	sock_record(fd, &was, "packet socket");
	ssprintf(token, "crbench packet_socket %d %08x", getpid(), rand32());

	test_daemon();
	test_waitsig();

	bad |= sock_same(fd, &was, "packet socket");
	if (was.domain != AF_PACKET || was.type != SOCK_RAW) {
		fail("the socket is domain %d type %d", was.domain, was.type);
		bad = 1;
	}
	if (getsockname(fd, (struct sockaddr *)&got, &len) || got.sll_family != AF_PACKET ||
	    got.sll_ifindex != ifindex || got.sll_protocol != htons(PROTO)) {
		fail("the packet socket is not bound to lo (%d) for %#x: ifindex %d protocol %#x",
		     ifindex, PROTO, got.sll_ifindex, ntohs(got.sll_protocol));
		bad = 1;
	}
	if (bad)
		return 0;

	/* a frame to ourselves on lo: zero MACs, our EtherType, the token */
	memset(frame, 0, sizeof(frame));
	frame[12] = PROTO >> 8;
	frame[13] = PROTO & 0xff;
	memcpy(frame + ETH_HLEN, token, strlen(token) + 1);
	if (sendto(fd, frame, sizeof(frame), 0, (struct sockaddr *)&sll, sizeof(sll)) != sizeof(frame)) {
		fail("send a frame on lo");
		return 0;
	}
	deadline = now_mono() + WAIT_MS / 1000.0;
	for (;;) {
		if (now_mono() > deadline || wait_fd(fd, POLLIN, WAIT_MS) <= 0) {
			fail("the frame sent on lo did not come back on the packet socket");
			return 0;
		}
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n >= (int)(ETH_HLEN + strlen(token) + 1) &&
		    !memcmp(buf + ETH_HLEN, token, strlen(token) + 1))
			break;
	}
	close(fd);
	pass();
	return 0;
}
