/* Point-to-site clients as charon holds them: who is connected (vici list-sas), and the
 * refusal of those whose certificate is revoked.
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
 * with pointToSite): [{gateway, identity, address, remoteHost, since, bytesIn, bytesOut,
 * packetsIn, packetsOut, uniqueId}], sorted by gateway and address. NULL when charon did
 * not answer. */
json_t *vpn_clients_list(json_t *state);
/* Terminates the IKE SAs of clients whose certificate is revoked (or not found to be
 * checked), each once, saying so; `checked` (unique id -> true) remembers the clients
 * already let in. Returns how many were refused. */
int vpn_clients_refuse_revoked(json_t *state, json_t *checked);
/* `vnet-xdp clients [-n NAME] [-j]` */
int clients_main(int argc, char **argv);

#endif
