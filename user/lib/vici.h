/* A client of charon's vici interface (strongSwan's Versatile IKE Control Interface),
 * written from its documented wire format, so that vnet-xdp talks to charon without a
 * shell, without swanctl and without a secret in argv or a file.
 *
 * A message is a JSON object here: a section is an object, a key/value a string, a list
 * an array of strings. Packets are a 4-byte big-endian length, a type byte and, for named
 * types, a length-prefixed name; whatever charon (or an impostor on the socket) sends is
 * checked against those bounds before it is believed. */
#ifndef VNET_XDP_VICI_H
#define VNET_XDP_VICI_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define VICI_DEFAULT_SOCKET "/var/run/charon.vici"
/* charon's own limit on a packet (VICI_MESSAGE_SIZE_MAX). */
#define VICI_PACKET_MAX (512 * 1024)
#define VICI_DEPTH_MAX 16
#define VICI_EVENTS_MAX 65536 /* events one streamed request may deliver */

enum vici_packet_type {
	VICI_CMD_REQUEST = 0,
	VICI_CMD_RESPONSE = 1,
	VICI_CMD_UNKNOWN = 2,
	VICI_EVENT_REGISTER = 3,
	VICI_EVENT_UNREGISTER = 4,
	VICI_EVENT_CONFIRM = 5,
	VICI_EVENT_UNKNOWN = 6,
	VICI_EVENT = 7,
};

enum vici_element {
	VICI_SECTION_START = 1,
	VICI_SECTION_END = 2,
	VICI_KEY_VALUE = 3,
	VICI_LIST_START = 4,
	VICI_LIST_ITEM = 5,
	VICI_LIST_END = 6,
};

struct vici_buf {
	uint8_t *data;
	size_t len, cap;
};

/* Appends the elements of msg (an object) to buf. Returns 0, -EINVAL for what vici cannot
 * carry (a name over 255 bytes, a value over 65535, a number, a list of non-strings),
 * -EMSGSIZE past VICI_PACKET_MAX, -ENOMEM. */
int vici_encode(const json_t *msg, struct vici_buf *buf);
/* The message of len bytes as an object. Returns 0 or -EBADMSG (truncated, unbalanced,
 * too deep, an unknown element, a duplicate name) with *out NULL. */
int vici_decode(const uint8_t *data, size_t len, json_t **out);
/* Frees buf, wiping it first: a request may have carried a secret. */
void vici_buf_wipe(struct vici_buf *buf);

struct vici {
	int fd;
	int timeout_ms; /* for each packet to arrive whole */
};

/* The socket: $VNET_XDP_VICI (unix:///path or /path), else VICI_DEFAULT_SOCKET. */
const char *vici_socket_path(void);
/* Connects to the socket. Returns 0 or -errno (-ENOENT, -ECONNREFUSED: no charon). */
int vici_connect(struct vici *v, const char *path);
void vici_close(struct vici *v);

/* Sends command cmd with args (NULL: none) and waits for its response. Returns 0 with
 * *reply set, -EOPNOTSUPP (charon does not know cmd), -EBADMSG/-EMSGSIZE (a malformed or
 * oversized reply), -ETIMEDOUT, -ECONNRESET (the connection ended), or -errno. */
int vici_request(struct vici *v, const char *cmd, const json_t *args, json_t **reply);
/* The same for a command that streams its results as `event` events: registers for it,
 * hands each to on_event (which returns 0, or an error that ends the wait) and
 * unregisters. */
int vici_request_stream(struct vici *v, const char *cmd, const json_t *args, const char *event,
			int (*on_event)(json_t *msg, void *data), void *data, json_t **reply);
/* A command's verdict: 0 when reply says success = yes, else -EIO with *errmsg (charon's
 * words, or a fixed text) pointing into reply. */
int vici_success(const json_t *reply, const char **errmsg);
/* The bytes of a binary value as vici_decode keeps it (not valid UTF-8: one code point
 * per byte). 0, -E2BIG, or -EINVAL when the value was text. */
int vici_value_bytes(const json_t *value, uint8_t *out, size_t size, size_t *length);

#endif
