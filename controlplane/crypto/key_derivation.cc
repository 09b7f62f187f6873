// SKEYSEED, IKE SA keys and child SA KEYMAT.
#include "controlplane/crypto/key_derivation.h"

#include "controlplane/crypto/prf.h"

namespace segw::cp::crypto {

using shared::make_error;

namespace {

// Cuts consecutive keys off a prf+ stream.
class KeyCutter {
 public:
  explicit KeyCutter(const SecureBytes& stream) : stream_(stream) {}
  SecureBytes next(size_t length) {
    SecureBytes key = stream_.slice(offset_, length);
    offset_ += length;
    return key;
  }

 private:
  const SecureBytes& stream_;
  size_t offset_ = 0;
};

}  // namespace

shared::Result<SecureBytes> compute_skeyseed(PrfAlgorithm prf_algorithm,
                                             std::span<const uint8_t> nonce_i,
                                             std::span<const uint8_t> nonce_r,
                                             std::span<const uint8_t> shared_secret) {
  SecureBytes key(nonce_i);
  key.append(nonce_r);
  return prf(prf_algorithm, key, {shared_secret});
}

shared::Result<SecureBytes> compute_rekey_skeyseed(PrfAlgorithm old_prf,
                                                   std::span<const uint8_t> old_sk_d,
                                                   std::span<const uint8_t> shared_secret,
                                                   std::span<const uint8_t> nonce_i,
                                                   std::span<const uint8_t> nonce_r) {
  return prf(old_prf, old_sk_d, {shared_secret, nonce_i, nonce_r});
}

shared::Result<IkeSaKeys> derive_ike_sa_keys(PrfAlgorithm prf, const CipherSuite& suite,
                                             std::span<const uint8_t> skeyseed,
                                             std::span<const uint8_t> nonce_i,
                                             std::span<const uint8_t> nonce_r,
                                             const IkeSpi& spi_i, const IkeSpi& spi_r) {
  if (auto status = validate_cipher_suite(suite); !status) return make_error(status.error());
  const size_t prf_key = prf_output_length(prf);
  const size_t integ_key = integ_key_length(suite.integ);
  const size_t encr_key = encr_key_length(suite);
  SecureBytes seed(nonce_i);
  seed.append(nonce_r);
  seed.append(spi_i);
  seed.append(spi_r);
  auto stream = prf_plus(prf, skeyseed, seed, 3 * prf_key + 2 * integ_key + 2 * encr_key);
  if (!stream) return make_error(stream.error());
  KeyCutter cut(*stream);
  IkeSaKeys keys;
  keys.sk_d = cut.next(prf_key);
  keys.sk_ai = cut.next(integ_key);
  keys.sk_ar = cut.next(integ_key);
  keys.sk_ei = cut.next(encr_key);
  keys.sk_er = cut.next(encr_key);
  keys.sk_pi = cut.next(prf_key);
  keys.sk_pr = cut.next(prf_key);
  return keys;
}

shared::Result<IkeSaKeys> derive_initial_ike_sa_keys(PrfAlgorithm prf, const CipherSuite& suite,
                                                     std::span<const uint8_t> shared_secret,
                                                     std::span<const uint8_t> nonce_i,
                                                     std::span<const uint8_t> nonce_r,
                                                     const IkeSpi& spi_i, const IkeSpi& spi_r) {
  auto skeyseed = compute_skeyseed(prf, nonce_i, nonce_r, shared_secret);
  if (!skeyseed) return make_error(skeyseed.error());
  return derive_ike_sa_keys(prf, suite, *skeyseed, nonce_i, nonce_r, spi_i, spi_r);
}

shared::Result<IkeSaKeys> derive_rekeyed_ike_sa_keys(
    PrfAlgorithm old_prf, std::span<const uint8_t> old_sk_d, PrfAlgorithm new_prf,
    const CipherSuite& new_suite, std::span<const uint8_t> shared_secret,
    std::span<const uint8_t> nonce_i, std::span<const uint8_t> nonce_r, const IkeSpi& spi_i,
    const IkeSpi& spi_r) {
  auto skeyseed = compute_rekey_skeyseed(old_prf, old_sk_d, shared_secret, nonce_i, nonce_r);
  if (!skeyseed) return make_error(skeyseed.error());
  return derive_ike_sa_keys(new_prf, new_suite, *skeyseed, nonce_i, nonce_r, spi_i, spi_r);
}

shared::Result<ChildSaKeys> derive_child_sa_keys(PrfAlgorithm prf, const CipherSuite& suite,
                                                 std::span<const uint8_t> sk_d,
                                                 std::span<const uint8_t> pfs_shared_secret,
                                                 std::span<const uint8_t> nonce_i,
                                                 std::span<const uint8_t> nonce_r) {
  if (auto status = validate_cipher_suite(suite); !status) return make_error(status.error());
  const size_t encr_key = encr_key_length(suite);
  const size_t integ_key = integ_key_length(suite.integ);
  SecureBytes seed(pfs_shared_secret);
  seed.append(nonce_i);
  seed.append(nonce_r);
  auto stream = prf_plus(prf, sk_d, seed, 2 * (encr_key + integ_key));
  if (!stream) return make_error(stream.error());
  // RFC 7296 §2.17: per SA, encryption key first, then integrity; the
  // initiator-to-responder SA first.
  KeyCutter cut(*stream);
  ChildSaKeys keys;
  keys.encr_i2r = cut.next(encr_key);
  keys.integ_i2r = cut.next(integ_key);
  keys.encr_r2i = cut.next(encr_key);
  keys.integ_r2i = cut.next(integ_key);
  return keys;
}

}  // namespace segw::cp::crypto
