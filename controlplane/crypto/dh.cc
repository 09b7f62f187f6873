// IKE Diffie-Hellman over EVP_PKEY: key generation, KE encoding, peer
// validation and derivation.
#include "controlplane/crypto/dh.h"

#include <openssl/core_names.h>
#include <openssl/obj_mac.h>

#include <string>

namespace segw::cp::crypto {

using shared::make_error;

namespace {

constexpr const char* kModpGroupName = "modp_2048";  // RFC 3526 §3 in OpenSSL

bool is_ecp(DhGroup group) { return group == DhGroup::kEcp256 || group == DhGroup::kEcp384; }

const char* curve_name(DhGroup group) {
  return group == DhGroup::kEcp256 ? "P-256" : "P-384";
}

int curve_nid(DhGroup group) {
  return group == DhGroup::kEcp256 ? NID_X9_62_prime256v1 : NID_secp384r1;
}

std::string prefix(DhGroup group) {
  return std::string("D-H group ") + std::to_string(static_cast<unsigned>(group)) + " (" +
         to_string(group) + "): ";
}

// The public value of `key` in KE payload encoding.
shared::Result<std::vector<uint8_t>> encode_public(DhGroup group, EVP_PKEY* key) {
  std::vector<uint8_t> out(dh_public_value_length(group));
  if (group == DhGroup::kCurve25519) {
    size_t length = out.size();
    if (EVP_PKEY_get_raw_public_key(key, out.data(), &length) != 1 || length != out.size()) {
      return openssl_error(prefix(group) + "reading the public key");
    }
    return out;
  }
  if (group == DhGroup::kModp2048) {
    BIGNUM* raw = nullptr;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PUB_KEY, &raw) != 1) {
      return openssl_error(prefix(group) + "reading the public key");
    }
    BignumPtr pub(raw);
    if (BN_bn2binpad(pub.get(), out.data(), static_cast<int>(out.size())) < 0) {
      return openssl_error(prefix(group) + "encoding the public key");
    }
    return out;
  }
  // ECP: x | y, each zero-padded to the field size (RFC 5903 §7).
  BIGNUM* raw_x = nullptr;
  BIGNUM* raw_y = nullptr;
  const int ok_x = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &raw_x);
  const int ok_y = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &raw_y);
  BignumPtr x(raw_x);
  BignumPtr y(raw_y);
  const int half = static_cast<int>(out.size() / 2);
  if (ok_x != 1 || ok_y != 1 || BN_bn2binpad(x.get(), out.data(), half) < 0 ||
      BN_bn2binpad(y.get(), out.data() + half, half) < 0) {
    return openssl_error(prefix(group) + "encoding the public point");
  }
  return out;
}

// An EVP_PKEY from OSSL_PARAMs (selection: public key or key pair).
shared::Result<PkeyPtr> pkey_from_params(const char* type, OSSL_PARAM_BLD* builder,
                                         int selection, const std::string& what) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(builder));
  if (!params) return openssl_error(what + ": building parameters");
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, selection, params.get()) != 1) {
    return openssl_error(what);
  }
  return PkeyPtr(raw);
}

// The peer's value as an EVP_PKEY, after the group's range checks.
shared::Result<PkeyPtr> decode_peer(DhGroup group, std::span<const uint8_t> value) {
  const std::string where = prefix(group);
  if (value.size() != dh_public_value_length(group)) {
    return make_error(where + "peer public value of " + std::to_string(value.size()) +
                      " octets, expected " + std::to_string(dh_public_value_length(group)));
  }
  if (group == DhGroup::kCurve25519) {
    // Every 32-octet string is a valid u-coordinate (RFC 7748 §5); small
    // order points are caught by the all-zero check after derivation.
    PkeyPtr key(EVP_PKEY_new_raw_public_key_ex(nullptr, "X25519", nullptr, value.data(),
                                               value.size()));
    if (!key) return openssl_error(where + "loading the peer public value");
    return key;
  }
  ParamBldPtr builder(OSSL_PARAM_BLD_new());
  if (!builder) return openssl_error(where + "OSSL_PARAM_BLD_new");
  if (group == DhGroup::kModp2048) {
    // RFC 7296 §5 / NIST SP 800-56A 5.6.2.3.1: 1 < y < p-1. OpenSSL's
    // public check (in derive_set_peer) then adds y^q = 1 mod p.
    BignumPtr y(BN_bin2bn(value.data(), static_cast<int>(value.size()), nullptr));
    BignumPtr p(BN_get_rfc3526_prime_2048(nullptr));
    BignumPtr p_minus_1(BN_new());
    if (!y || !p || !p_minus_1 || BN_sub(p_minus_1.get(), p.get(), BN_value_one()) != 1) {
      return openssl_error(where + "bignum setup");
    }
    if (BN_is_zero(y.get()) || BN_is_one(y.get())) {
      return make_error(where + "peer public value is " + (BN_is_zero(y.get()) ? "0" : "1") +
                        ", expected 1 < y < p-1");
    }
    if (BN_cmp(y.get(), p.get()) >= 0) {
      return make_error(where + "peer public value is >= p, expected 1 < y < p-1");
    }
    if (BN_cmp(y.get(), p_minus_1.get()) == 0) {
      return make_error(where + "peer public value is p-1, expected 1 < y < p-1");
    }
    if (OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                        kModpGroupName, 0) != 1 ||
        OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, y.get()) != 1) {
      return openssl_error(where + "building the peer key");
    }
    return pkey_from_params("DH", builder.get(), EVP_PKEY_PUBLIC_KEY,
                            where + "loading the peer public value");
  }
  // ECP: restore the uncompressed point format octet RFC 5903 §7 drops,
  // then let OpenSSL decode it (it rejects points off the curve).
  std::vector<uint8_t> point;
  point.reserve(value.size() + 1);
  point.push_back(POINT_CONVERSION_UNCOMPRESSED);
  point.insert(point.end(), value.begin(), value.end());
  EcGroupPtr ec_group(EC_GROUP_new_by_curve_name(curve_nid(group)));
  EcPointPtr ec_point(ec_group ? EC_POINT_new(ec_group.get()) : nullptr);
  if (!ec_point) return openssl_error(where + "EC setup");
  if (EC_POINT_oct2point(ec_group.get(), ec_point.get(), point.data(), point.size(), nullptr) !=
          1 ||
      EC_POINT_is_on_curve(ec_group.get(), ec_point.get(), nullptr) != 1) {
    drain_openssl_errors();
    return make_error(where + "peer public value is not a point on " + curve_name(group));
  }
  if (OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                      curve_name(group), 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return openssl_error(where + "building the peer key");
  }
  return pkey_from_params("EC", builder.get(), EVP_PKEY_PUBLIC_KEY,
                          where + "loading the peer public value");
}

}  // namespace

size_t dh_public_value_length(DhGroup group) {
  switch (group) {
    case DhGroup::kModp2048: return 256;
    case DhGroup::kEcp256: return 64;
    case DhGroup::kEcp384: return 96;
    case DhGroup::kCurve25519: return 32;
  }
  return 0;
}

size_t dh_shared_secret_length(DhGroup group) {
  switch (group) {
    case DhGroup::kModp2048: return 256;
    case DhGroup::kEcp256: return 32;
    case DhGroup::kEcp384: return 48;
    case DhGroup::kCurve25519: return 32;
  }
  return 0;
}

shared::Result<DhKeyPair> DhKeyPair::generate(DhGroup group) {
  const std::string where = prefix(group);
  EVP_PKEY* raw = nullptr;
  if (group == DhGroup::kCurve25519) {
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519");
  } else if (is_ecp(group)) {
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve_name(group));
  } else if (group == DhGroup::kModp2048) {
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "DH", nullptr));
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                         const_cast<char*>(kModpGroupName), 0),
        OSSL_PARAM_construct_end(),
    };
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_params(ctx.get(), params) != 1 ||
        EVP_PKEY_generate(ctx.get(), &raw) != 1) {
      raw = nullptr;
    }
  } else {
    return make_error(where + "unsupported");
  }
  if (raw == nullptr) return openssl_error(where + "key generation");
  PkeyPtr key(raw);
  auto public_value = encode_public(group, key.get());
  if (!public_value) return make_error(public_value.error());
  return DhKeyPair(group, std::move(key), std::move(*public_value));
}

shared::Result<DhKeyPair> DhKeyPair::from_private_key(DhGroup group,
                                                      std::span<const uint8_t> private_key) {
  const std::string where = prefix(group);
  PkeyPtr key;
  if (group == DhGroup::kCurve25519) {
    if (private_key.size() != 32) {
      return make_error(where + "private key of " + std::to_string(private_key.size()) +
                        " octets, expected 32");
    }
    key.reset(EVP_PKEY_new_raw_private_key_ex(nullptr, "X25519", nullptr, private_key.data(),
                                              private_key.size()));
    if (!key) return openssl_error(where + "loading the private key");
  } else {
    BignumPtr priv(BN_bin2bn(private_key.data(), static_cast<int>(private_key.size()), nullptr));
    BnCtxPtr bn_ctx(BN_CTX_new());
    ParamBldPtr builder(OSSL_PARAM_BLD_new());
    if (!priv || !bn_ctx || !builder) return openssl_error(where + "setup");
    if (BN_is_zero(priv.get())) return make_error(where + "private key is zero");
    if (group == DhGroup::kModp2048) {
      BignumPtr p(BN_get_rfc3526_prime_2048(nullptr));
      BignumPtr pub(BN_new());
      if (!p || !pub) return openssl_error(where + "setup");
      // g = 2 (RFC 3526 §3): pub = 2^x mod p.
      BignumPtr two(BN_new());
      if (!two || BN_set_word(two.get(), 2) != 1 ||
          BN_mod_exp(pub.get(), two.get(), priv.get(), p.get(), bn_ctx.get()) != 1) {
        return openssl_error(where + "computing 2^x mod p");
      }
      if (BN_cmp(priv.get(), p.get()) >= 0) return make_error(where + "private key >= p");
      if (OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                          kModpGroupName, 0) != 1 ||
          OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_PRIV_KEY, priv.get()) != 1 ||
          OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, pub.get()) != 1) {
        return openssl_error(where + "building the key");
      }
      auto built = pkey_from_params("DH", builder.get(), EVP_PKEY_KEYPAIR,
                                    where + "loading the key pair");
      if (!built) return make_error(built.error());
      key = std::move(*built);
    } else if (is_ecp(group)) {
      EcGroupPtr ec_group(EC_GROUP_new_by_curve_name(curve_nid(group)));
      EcPointPtr point(ec_group ? EC_POINT_new(ec_group.get()) : nullptr);
      if (!point) return openssl_error(where + "EC setup");
      if (BN_cmp(priv.get(), EC_GROUP_get0_order(ec_group.get())) >= 0) {
        return make_error(where + "private key >= the group order");
      }
      // OpenSSL 3.0 does not derive the public point on import: Q = d*G.
      if (EC_POINT_mul(ec_group.get(), point.get(), priv.get(), nullptr, nullptr,
                       bn_ctx.get()) != 1) {
        return openssl_error(where + "computing d*G");
      }
      std::vector<uint8_t> octets(1 + dh_public_value_length(group));
      if (EC_POINT_point2oct(ec_group.get(), point.get(), POINT_CONVERSION_UNCOMPRESSED,
                             octets.data(), octets.size(), bn_ctx.get()) != octets.size()) {
        return openssl_error(where + "encoding d*G");
      }
      if (OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                          curve_name(group), 0) != 1 ||
          OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_PRIV_KEY, priv.get()) != 1 ||
          OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, octets.data(),
                                           octets.size()) != 1) {
        return openssl_error(where + "building the key");
      }
      auto built = pkey_from_params("EC", builder.get(), EVP_PKEY_KEYPAIR,
                                    where + "loading the key pair");
      if (!built) return make_error(built.error());
      key = std::move(*built);
    } else {
      return make_error(where + "unsupported");
    }
  }
  auto public_value = encode_public(group, key.get());
  if (!public_value) return make_error(public_value.error());
  return DhKeyPair(group, std::move(key), std::move(*public_value));
}

shared::Result<SecureBytes> DhKeyPair::compute_shared_secret(
    std::span<const uint8_t> peer_value) const {
  const std::string where = prefix(group_);
  auto peer = decode_peer(group_, peer_value);
  if (!peer) return make_error(peer.error());
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1) return openssl_error(where + "derive init");
  // RFC 7296 §2.14: g^ir is the full-length value, leading zeros kept.
  if (group_ == DhGroup::kModp2048 && EVP_PKEY_CTX_set_dh_pad(ctx.get(), 1) != 1) {
    return openssl_error(where + "setting DH padding");
  }
  // validate_peer = 1: OpenSSL's public key check (subgroup membership for
  // MODP, point validity for ECP).
  if (EVP_PKEY_derive_set_peer_ex(ctx.get(), peer->get(), 1) != 1) {
    return openssl_error(where + "peer public value rejected by validation");
  }
  size_t length = 0;
  if (EVP_PKEY_derive(ctx.get(), nullptr, &length) != 1) return openssl_error(where + "derive");
  SecureBytes secret(length);
  if (EVP_PKEY_derive(ctx.get(), secret.data(), &length) != 1) {
    if (group_ == DhGroup::kCurve25519) {
      drain_openssl_errors();
      return make_error(where + "peer public value is of small order (all-zero shared secret, "
                                "RFC 8031 §2.3)");
    }
    return openssl_error(where + "derive");
  }
  secret.resize(length);
  if (secret.size() != dh_shared_secret_length(group_)) {
    return make_error(where + "shared secret of " + std::to_string(secret.size()) +
                      " octets, expected " + std::to_string(dh_shared_secret_length(group_)));
  }
  // RFC 8031 §2.3: MUST check the X25519 result is not all zero (OpenSSL
  // also refuses; checked here so the rule does not hang on that).
  const SecureBytes zeros(secret.size());
  if (secret == zeros) {
    return make_error(where + "all-zero shared secret (small-order peer public value, "
                              "RFC 8031 §2.3)");
  }
  return secret;
}

}  // namespace segw::cp::crypto
