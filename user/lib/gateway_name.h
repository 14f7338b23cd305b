/* A gateway's name: the one rule for what may be one, and the one way a path is made
 * from it. The name becomes a bpffs directory (/sys/fs/bpf/vnet-xdp/NAME) and file names
 * under /run/vnet-xdp (NAME.json, NAME.nsg-ids.json, NAME.lock, ...), so a name that is
 * not a plain word could reach outside them ("..", "a/b") or be another gateway's file
 * ("gw1.nsg-ids"). */
#ifndef VNET_XDP_GATEWAY_NAME_H
#define VNET_XDP_GATEWAY_NAME_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

/* As long as an interface name: the longest name the kernel is handed that carries a
 * gateway's name is an interface's (IFNAMSIZ with its NUL); bpffs entries (NAME_MAX)
 * and the paths under /run/vnet-xdp have room to spare. */
#define GATEWAY_NAME_MAX 15
_Static_assert(GATEWAY_NAME_MAX == IF_NAMESIZE - 1, "an interface name's length");

#define GATEWAY_NAME_TEXT_(x) #x
#define GATEWAY_NAME_TEXT(x) GATEWAY_NAME_TEXT_(x)
/* The rule in the user's words, for messages. */
#define GATEWAY_NAME_ALLOWED "1 to " GATEWAY_NAME_TEXT(GATEWAY_NAME_MAX) " letters, digits, " \
	"'-' and '_', starting with a letter or digit"

/* NULL when `name` is a gateway name (1 to GATEWAY_NAME_MAX letters, digits, '-' and '_',
 * starting with a letter or digit), else why not, in a few words. */
const char *gateway_name_problem(const char *name);
static inline bool gateway_name_valid(const char *name)
{
	return !gateway_name_problem(name);
}

/* For a command's -n NAME: 0 when there is none or it is valid; else one line on stderr
 * ("vnet-xdp COMMAND: -n '...' is not a gateway name: ...") and -EINVAL. */
int gateway_name_check(const char *command, const char *name);

/* Where a gateway's own files are (the state, the NSG ids, the locks): ROOT below. */
#define STATE_ROOT "/run/vnet-xdp"

/* ROOT/NAME plus SUFFIX into buf; "" (which every system call refuses) when `name` is
 * not a gateway name or the path does not fit. */
void gateway_path(const char *root, const char *name, const char *suffix, char *buf,
		  size_t size);

#endif
