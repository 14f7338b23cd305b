#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "lib/vici.h"

/* ---- encoding ----------------------------------------------------------------------- */

static int buf_put(struct vici_buf *b, const void *data, size_t len)
{
	if (b->len + len > VICI_PACKET_MAX)
		return -EMSGSIZE;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *grown;
		size_t used = b->len;

		while (cap < b->len + len)
			cap *= 2;
		/* Not realloc: the old block may hold a secret, wiped before it is let go. */
		grown = malloc(cap);
		if (!grown)
			return -ENOMEM;
		if (used)
			memcpy(grown, b->data, used);
		vici_buf_wipe(b);
		b->data = grown;
		b->cap = cap;
		b->len = used;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

static int put_u8(struct vici_buf *b, uint8_t v)
{
	return buf_put(b, &v, 1);
}

/* A name: one length byte, then the bytes. */
static int put_name(struct vici_buf *b, const char *name)
{
	size_t len = strlen(name);
	int err;

	if (len == 0 || len > 255)
		return -EINVAL;
	err = put_u8(b, (uint8_t)len);
	return err ? err : buf_put(b, name, len);
}

/* A value: two length bytes, big-endian, then the bytes. */
static int put_value(struct vici_buf *b, const json_t *value)
{
	size_t len = json_string_length(value);
	uint8_t be[2] = { (uint8_t)(len >> 8), (uint8_t)len };
	int err;

	if (len > 0xffff)
		return -EINVAL;
	err = buf_put(b, be, 2);
	return err ? err : buf_put(b, json_string_value(value), len);
}

static int encode_members(const json_t *msg, struct vici_buf *b, int depth);

static int encode_list(const char *name, const json_t *list, struct vici_buf *b)
{
	size_t i;
	json_t *item;
	int err = put_u8(b, VICI_LIST_START);

	if (!err)
		err = put_name(b, name);
	json_array_foreach(list, i, item) {
		if (err)
			break;
		err = json_is_string(item) ? put_u8(b, VICI_LIST_ITEM) : -EINVAL;
		if (!err)
			err = put_value(b, item);
	}
	return err ? err : put_u8(b, VICI_LIST_END);
}

static int encode_member(const char *name, const json_t *value, struct vici_buf *b, int depth)
{
	int err;

	if (json_is_string(value)) {
		err = put_u8(b, VICI_KEY_VALUE);
		if (!err)
			err = put_name(b, name);
		return err ? err : put_value(b, value);
	}
	if (json_is_array(value))
		return encode_list(name, value, b);
	if (!json_is_object(value) || depth >= VICI_DEPTH_MAX)
		return -EINVAL;
	err = put_u8(b, VICI_SECTION_START);
	if (!err)
		err = put_name(b, name);
	if (!err)
		err = encode_members(value, b, depth + 1);
	return err ? err : put_u8(b, VICI_SECTION_END);
}

static int encode_members(const json_t *msg, struct vici_buf *b, int depth)
{
	const char *name;
	json_t *value;
	int err = 0;

	json_object_foreach((json_t *)msg, name, value) {
		err = encode_member(name, value, b, depth);
		if (err)
			break;
	}
	return err;
}

int vici_encode(const json_t *msg, struct vici_buf *buf)
{
	if (msg && !json_is_object(msg))
		return -EINVAL;
	return msg ? encode_members(msg, buf, 0) : 0;
}

void vici_buf_wipe(struct vici_buf *b)
{
	if (b->data)
		explicit_bzero(b->data, b->cap);
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ---- decoding ----------------------------------------------------------------------- */

struct reader {
	const uint8_t *p, *end;
};

static bool take(struct reader *r, size_t n, const uint8_t **out)
{
	if ((size_t)(r->end - r->p) < n)
		return false;
	*out = r->p;
	r->p += n;
	return true;
}

/* A name into buf (NUL-terminated); false when truncated, empty or holding a NUL. */
static bool take_name(struct reader *r, char buf[256])
{
	const uint8_t *len, *bytes;

	if (!take(r, 1, &len) || !*len || !take(r, *len, &bytes) || memchr(bytes, 0, *len))
		return false;
	memcpy(buf, bytes, *len);
	buf[*len] = '\0';
	return true;
}

/* A value as a JSON string. Values are text in what we read from charon, but for binary
 * ones (a certificate's DER in list-certs): a value that is not valid UTF-8 has each of
 * its bytes as the code point of that number (Latin-1), which vici_value_bytes undoes. */
static json_t *take_value(struct reader *r)
{
	const uint8_t *be, *bytes;
	size_t len;
	json_t *s;
	char *copy;

	if (!take(r, 2, &be))
		return NULL;
	len = (size_t)be[0] << 8 | be[1];
	if (!take(r, len, &bytes))
		return NULL;
	s = json_stringn((const char *)bytes, len);
	if (s || !(copy = malloc(2 * len + 1)))
		return s;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (bytes[i] < 0x80) {
			copy[n++] = (char)bytes[i];
			continue;
		}
		copy[n++] = (char)(0xc0 | bytes[i] >> 6);
		copy[n++] = (char)(0x80 | (bytes[i] & 0x3f));
	}
	s = json_stringn(copy, n);
	free(copy);
	return s;
}

int vici_value_bytes(const json_t *value, uint8_t *out, size_t size, size_t *length)
{
	const unsigned char *text = (const unsigned char *)json_string_value(value);
	size_t len = json_string_length(value), n = 0;

	if (!text)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (n == size)
			return -E2BIG;
		if (text[i] < 0x80) {
			out[n++] = text[i];
		} else if ((text[i] & 0xfe) == 0xc2 && i + 1 < len) {
			out[n++] = (uint8_t)((text[i] & 0x03) << 6 | (text[i + 1] & 0x3f));
			i++;
		} else {
			return -EINVAL; /* text that was valid UTF-8: not binary */
		}
	}
	*length = n;
	return 0;
}

static int add_member(json_t *section, const char *name, json_t *value)
{
	if (!value)
		return -EBADMSG;
	if (json_object_get(section, name)) { /* charon never repeats a name in a section */
		json_decref(value);
		return -EBADMSG;
	}
	return json_object_set_new(section, name, value) ? -ENOMEM : 0;
}

static json_t *decode_list(struct reader *r)
{
	json_t *list = json_array();
	const uint8_t *type;

	while (list && take(r, 1, &type)) {
		json_t *item;

		if (*type == VICI_LIST_END)
			return list;
		if (*type != VICI_LIST_ITEM || !(item = take_value(r)))
			break;
		json_array_append_new(list, item);
	}
	json_decref(list);
	return NULL;
}

/* The elements up to the end of the section (depth > 0) or of the message (depth 0). */
static int decode_section(struct reader *r, json_t *section, int depth)
{
	const uint8_t *type;
	char name[256];
	int err;

	while (take(r, 1, &type)) {
		switch (*type) {
		case VICI_SECTION_END:
			return depth > 0 ? 0 : -EBADMSG;
		case VICI_SECTION_START: {
			json_t *sub;

			if (depth + 1 >= VICI_DEPTH_MAX || !take_name(r, name))
				return -EBADMSG;
			sub = json_object();
			err = sub ? decode_section(r, sub, depth + 1) : -ENOMEM;
			if (err) {
				json_decref(sub);
				return err;
			}
			err = add_member(section, name, sub);
			break;
		}
		case VICI_KEY_VALUE:
			err = take_name(r, name) ? add_member(section, name, take_value(r)) : -EBADMSG;
			break;
		case VICI_LIST_START:
			err = take_name(r, name) ? add_member(section, name, decode_list(r)) : -EBADMSG;
			break;
		default:
			return -EBADMSG;
		}
		if (err)
			return err;
	}
	return depth == 0 ? 0 : -EBADMSG; /* a section still open at the end: truncated */
}

int vici_decode(const uint8_t *data, size_t len, json_t **out)
{
	struct reader r = { data, data + len };
	json_t *msg = json_object();
	int err = msg ? decode_section(&r, msg, 0) : -ENOMEM;

	if (err) {
		json_decref(msg);
		msg = NULL;
	}
	*out = msg;
	return err;
}

/* ---- transport ---------------------------------------------------------------------- */

const char *vici_socket_path(void)
{
	const char *uri = getenv("VNET_XDP_VICI");

	if (!uri || !*uri)
		return VICI_DEFAULT_SOCKET;
	return strncmp(uri, "unix://", 7) ? uri : uri + 7;
}

int vici_connect(struct vici *v, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	v->fd = -1;
	if (!v->timeout_ms)
		v->timeout_ms = 30000;
	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		int err = -errno;

		close(fd);
		return err;
	}
	v->fd = fd;
	return 0;
}

void vici_close(struct vici *v)
{
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads exactly len bytes before the deadline. */
static int read_full(struct vici *v, uint8_t *buf, size_t len, long long deadline)
{
	while (len) {
		struct pollfd pfd = { .fd = v->fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;
		int rc;

		if (left <= 0)
			return -ETIMEDOUT;
		rc = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -errno;
		if (rc == 0)
			continue;
		n = recv(v->fd, buf, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_full(struct vici *v, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = send(v->fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends one packet: type, name (NULL for unnamed types), message. */
static int send_packet(struct vici *v, uint8_t type, const char *name, const json_t *msg)
{
	struct vici_buf b = { 0 };
	uint8_t header[4] = { 0 };
	int err = buf_put(&b, header, 4);

	if (!err)
		err = put_u8(&b, type);
	if (!err && name)
		err = put_name(&b, name);
	if (!err)
		err = vici_encode(msg, &b);
	if (!err) {
		size_t len = b.len - 4;

		b.data[0] = (uint8_t)(len >> 24);
		b.data[1] = (uint8_t)(len >> 16);
		b.data[2] = (uint8_t)(len >> 8);
		b.data[3] = (uint8_t)len;
		err = write_full(v, b.data, b.len);
	}
	vici_buf_wipe(&b);
	return err;
}

struct packet {
	uint8_t type;
	char name[256]; /* named types only */
	json_t *msg;    /* CMD_RESPONSE and EVENT only */
};

/* Receives one packet whole, its length checked before a byte of it is allocated. */
static int recv_packet(struct vici *v, struct packet *pk)
{
	long long deadline = now_ms() + v->timeout_ms;
	uint8_t be[4], *body;
	struct reader r;
	const uint8_t *type;
	size_t len;
	int err;

	pk->msg = NULL;
	pk->name[0] = '\0';
	err = read_full(v, be, 4, deadline);
	if (err)
		return err;
	len = (size_t)be[0] << 24 | (size_t)be[1] << 16 | (size_t)be[2] << 8 | be[3];
	if (len == 0)
		return -EBADMSG;
	if (len > VICI_PACKET_MAX)
		return -EMSGSIZE;
	body = malloc(len);
	if (!body)
		return -ENOMEM;
	err = read_full(v, body, len, deadline);
	if (err)
		goto out;
	r = (struct reader){ body, body + len };
	take(&r, 1, &type); /* len > 0: always there */
	pk->type = body[0];
	if (pk->type > VICI_EVENT) {
		err = -EBADMSG;
	} else if (pk->type == VICI_EVENT || pk->type == VICI_CMD_REQUEST ||
		   pk->type == VICI_EVENT_REGISTER || pk->type == VICI_EVENT_UNREGISTER) {
		if (!take_name(&r, pk->name))
			err = -EBADMSG;
	}
	if (!err && (pk->type == VICI_CMD_RESPONSE || pk->type == VICI_EVENT))
		err = vici_decode(r.p, (size_t)(r.end - r.p), &pk->msg);
	else if (!err && r.p != r.end)
		err = -EBADMSG; /* the other types carry nothing */
out:
	free(body);
	return err;
}

/* Waits for the answer to an event (un)registration. */
static int event_confirm(struct vici *v, uint8_t type, const char *event)
{
	struct packet pk;
	int err = send_packet(v, type, event, NULL);

	while (!err) {
		err = recv_packet(v, &pk);
		if (err)
			break;
		json_decref(pk.msg);
		if (pk.type == VICI_EVENT_CONFIRM)
			return 0;
		if (pk.type == VICI_EVENT_UNKNOWN)
			return -EOPNOTSUPP;
		if (pk.type != VICI_EVENT)
			return -EBADMSG; /* events of an earlier registration may still arrive */
	}
	return err;
}

/* Sends the command and reads up to its response, events to on_event. */
static int command(struct vici *v, const char *cmd, const json_t *args, const char *event,
		   int (*on_event)(json_t *msg, void *data), void *data, json_t **reply)
{
	size_t events = 0;
	struct packet pk;
	int err = send_packet(v, VICI_CMD_REQUEST, cmd, args);

	*reply = NULL;
	while (!err) {
		err = recv_packet(v, &pk);
		if (err)
			break;
		if (pk.type == VICI_CMD_RESPONSE) {
			*reply = pk.msg;
			return 0;
		}
		if (pk.type == VICI_CMD_UNKNOWN)
			err = -EOPNOTSUPP;
		else if (pk.type != VICI_EVENT || !event || ++events > VICI_EVENTS_MAX)
			err = -EBADMSG;
		else if (!strcmp(pk.name, event) && on_event)
			err = on_event(pk.msg, data);
		json_decref(pk.msg);
	}
	return err;
}

int vici_request(struct vici *v, const char *cmd, const json_t *args, json_t **reply)
{
	return command(v, cmd, args, NULL, NULL, NULL, reply);
}

int vici_request_stream(struct vici *v, const char *cmd, const json_t *args, const char *event,
			int (*on_event)(json_t *msg, void *data), void *data, json_t **reply)
{
	int err = event_confirm(v, VICI_EVENT_REGISTER, event);

	*reply = NULL;
	if (err)
		return err;
	err = command(v, cmd, args, event, on_event, data, reply);
	if (!err)
		err = event_confirm(v, VICI_EVENT_UNREGISTER, event);
	if (err) {
		json_decref(*reply);
		*reply = NULL;
	}
	return err;
}

int vici_success(const json_t *reply, const char **errmsg)
{
	const char *success = json_string_value(json_object_get(reply, "success"));

	*errmsg = NULL;
	if (success && !strcmp(success, "yes"))
		return 0;
	*errmsg = json_string_value(json_object_get(reply, "errmsg"));
	if (!*errmsg || !**errmsg)
		*errmsg = success ? "charon said no, without a reason" : "charon's reply has no verdict";
	return -EIO;
}
