/* Point-to-site clients as charon holds them: who is connected (vici list-sas), what the
 * datapath counted of each, and the refusal of those whose certificate is revoked.
 *
 * strongSwan has no list of refused certificate fingerprints, and a CRL for Azure's
 * thumbprints cannot be made without the root's private key. So a client is refused
 * after IKE authentication: its certificate (the one charon verified, found by the IKE
 * identity with list-certs) is hashed with SHA-1, and an IKE SA whose certificate is
 * revoked, or cannot be found to be checked, is terminated. `vnet-xdp serve` looks every
 * second; `vnet-xdp clients` looks too before it lists. */
#ifndef VNET_XDP_VPN_CLIENTS_H
#define VNET_XDP_VPN_CLIENTS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define SHA1_DIGEST_LEN 20
void sha1(const void *data, size_t length, uint8_t digest[SHA1_DIGEST_LEN]);
/* Upper-case hex, as Azure writes thumbprints (41 bytes with the NUL). */
void thumbprint_text(const uint8_t digest[SHA1_DIGEST_LEN], char text[2 * SHA1_DIGEST_LEN + 1]);

/* The connected clients of the gateway's point-to-site tunnels (its state's "tunnels"
 * with pointToSite): [{gateway, identity, address, remoteHost, since, uniqueId}], sorted by
 * gateway and address. NULL when charon did not answer. */
json_t *vpn_clients_list(json_t *state);
/* Adds to each listed client what the datapath counted of it (tunnel_client_counters, by
 * its tunnel and virtual address): bytesIn, packetsIn (decrypted from it and let in),
 * bytesOut, packetsOut (sent into the tunnel to it). 0, or -errno when the gateway's map
 * cannot be opened. */
int vpn_clients_count(const char *gateway, json_t *state, json_t *clients);
/* Deletes the datapath's counters of every address no connected client holds (a client
 * gone, a tunnel removed), so that the next client given the address starts from zero.
 * How many were deleted, -EAGAIN when charon did not answer (nothing deleted), or -errno
 * when the map cannot be opened. */
int vpn_clients_forget_gone(const char *gateway, json_t *state);
/* Terminates the IKE SAs of clients whose certificate is revoked (or not found to be
 * checked), each once, saying so; `checked` (unique id -> true) remembers the clients
 * already let in. Returns how many were refused. */
int vpn_clients_refuse_revoked(json_t *state, json_t *checked);

#endif
