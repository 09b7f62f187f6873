// IKEv2 key derivation: IKE SA keys (RFC 7296 §2.14), IKE SA rekey
// SKEYSEED (§2.18) and child SA KEYMAT (§2.17).
#pragma once

#include <cstdint>
#include <span>

#include "controlplane/crypto/algorithms.h"
#include "controlplane/crypto/secure_bytes.h"
#include "shared/result.h"

namespace segw::cp::crypto {

// The seven IKE SA keys. sk_ai/sk_ar are empty with an AEAD suite; sk_ei/
// sk_er carry the 4-octet salt after the AES key with GCM (RFC 5282 §7.1).
struct IkeSaKeys {
  SecureBytes sk_d;
  SecureBytes sk_ai;
  SecureBytes sk_ar;
  SecureBytes sk_ei;
  SecureBytes sk_er;
  SecureBytes sk_pi;
  SecureBytes sk_pr;
};

// SKEYSEED = prf(Ni | Nr, g^ir) (RFC 7296 §2.14).
shared::Result<SecureBytes> compute_skeyseed(PrfAlgorithm prf, std::span<const uint8_t> nonce_i,
                                             std::span<const uint8_t> nonce_r,
                                             std::span<const uint8_t> shared_secret);

// SKEYSEED of a rekeyed IKE SA (RFC 7296 §2.18):
//   prf_old(SK_d(old), g^ir(new) | Ni | Nr)
// with the OLD IKE SA's PRF, the rekey exchange belonging to it.
shared::Result<SecureBytes> compute_rekey_skeyseed(PrfAlgorithm old_prf,
                                                   std::span<const uint8_t> old_sk_d,
                                                   std::span<const uint8_t> shared_secret,
                                                   std::span<const uint8_t> nonce_i,
                                                   std::span<const uint8_t> nonce_r);

// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} =
//   prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
// SK_d, SK_pi, SK_pr take the PRF's preferred key length (its output
// length, RFC 7296 §2.14); the others follow `suite`. Errors: invalid
// suite, OpenSSL failure.
shared::Result<IkeSaKeys> derive_ike_sa_keys(PrfAlgorithm prf, const CipherSuite& suite,
                                             std::span<const uint8_t> skeyseed,
                                             std::span<const uint8_t> nonce_i,
                                             std::span<const uint8_t> nonce_r,
                                             const IkeSpi& spi_i, const IkeSpi& spi_r);

// compute_skeyseed + derive_ike_sa_keys (IKE_SA_INIT).
shared::Result<IkeSaKeys> derive_initial_ike_sa_keys(PrfAlgorithm prf, const CipherSuite& suite,
                                                     std::span<const uint8_t> shared_secret,
                                                     std::span<const uint8_t> nonce_i,
                                                     std::span<const uint8_t> nonce_r,
                                                     const IkeSpi& spi_i, const IkeSpi& spi_r);

// compute_rekey_skeyseed + derive_ike_sa_keys with the NEW SA's PRF, suite,
// nonces and SPIs (the SPIs of the new IKE SA).
shared::Result<IkeSaKeys> derive_rekeyed_ike_sa_keys(
    PrfAlgorithm old_prf, std::span<const uint8_t> old_sk_d, PrfAlgorithm new_prf,
    const CipherSuite& new_suite, std::span<const uint8_t> shared_secret,
    std::span<const uint8_t> nonce_i, std::span<const uint8_t> nonce_r, const IkeSpi& spi_i,
    const IkeSpi& spi_r);

// Child SA keys, per direction (i2r: the SA carrying initiator-to-responder
// traffic). encr keys include the GCM salt; integ keys are empty for AEAD.
struct ChildSaKeys {
  SecureBytes encr_i2r;
  SecureBytes integ_i2r;
  SecureBytes encr_r2i;
  SecureBytes integ_r2i;
};

// KEYMAT = prf+(SK_d, [g^ir (new)] | Ni | Nr) (RFC 7296 §2.17), taken in the
// order encr_i2r, integ_i2r, encr_r2i, integ_r2i. pfs_shared_secret: empty
// without PFS (IKE_AUTH or CREATE_CHILD_SA without KE). Errors: invalid
// suite, OpenSSL failure.
shared::Result<ChildSaKeys> derive_child_sa_keys(PrfAlgorithm prf, const CipherSuite& suite,
                                                 std::span<const uint8_t> sk_d,
                                                 std::span<const uint8_t> pfs_shared_secret,
                                                 std::span<const uint8_t> nonce_i,
                                                 std::span<const uint8_t> nonce_r);

}  // namespace segw::cp::crypto
