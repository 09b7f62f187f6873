// Name tables of the IKEv2 wire constants: every value prints by name.
#include "controlplane/ike/codec/ike_constants.h"

namespace segw::cp::ike {
namespace {

std::string unknown(unsigned value) { return "unknown(" + std::to_string(value) + ")"; }

}  // namespace

std::string flags_to_string(uint8_t flags) {
  std::string out;
  auto add = [&out](const char* name) {
    if (!out.empty()) out += '|';
    out += name;
  };
  if (flags & kFlagInitiator) add("I");
  if (flags & kFlagVersion) add("V");
  if (flags & kFlagResponse) add("R");
  const uint8_t others = flags & static_cast<uint8_t>(~(kFlagInitiator | kFlagVersion | kFlagResponse));
  if (others != 0) add(("reserved(" + std::to_string(others) + ")").c_str());
  return out.empty() ? "none" : out;
}

size_t dh_public_value_length(DhId group) {
  switch (group) {
    case DhId::kModp2048: return 256;
    case DhId::kModp3072: return 384;
    case DhId::kModp4096: return 512;
    case DhId::kEcp256: return 64;
    case DhId::kEcp384: return 96;
    case DhId::kEcp521: return 132;
    case DhId::kCurve25519: return 32;
    case DhId::kNone: return 0;
  }
  return 0;
}

std::string to_string(ExchangeType value) {
  switch (value) {
    case ExchangeType::kIkeSaInit: return "IKE_SA_INIT";
    case ExchangeType::kIkeAuth: return "IKE_AUTH";
    case ExchangeType::kCreateChildSa: return "CREATE_CHILD_SA";
    case ExchangeType::kInformational: return "INFORMATIONAL";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(PayloadType value) {
  switch (value) {
    case PayloadType::kNone: return "NONE";
    case PayloadType::kSecurityAssociation: return "SA";
    case PayloadType::kKeyExchange: return "KE";
    case PayloadType::kIdInitiator: return "IDi";
    case PayloadType::kIdResponder: return "IDr";
    case PayloadType::kCertificate: return "CERT";
    case PayloadType::kCertificateRequest: return "CERTREQ";
    case PayloadType::kAuthentication: return "AUTH";
    case PayloadType::kNonce: return "Nonce";
    case PayloadType::kNotify: return "Notify";
    case PayloadType::kDelete: return "Delete";
    case PayloadType::kVendorId: return "VendorID";
    case PayloadType::kTsInitiator: return "TSi";
    case PayloadType::kTsResponder: return "TSr";
    case PayloadType::kEncrypted: return "SK";
    case PayloadType::kConfiguration: return "CP";
    case PayloadType::kEap: return "EAP";
    case PayloadType::kEncryptedFragment: return "SKF";
  }
  return unknown(static_cast<unsigned>(value));
}

bool is_known_payload_type(PayloadType type) {
  const auto v = static_cast<unsigned>(type);
  return (v >= 33 && v <= 48) || v == 53;
}

std::string to_string(TransformType value) {
  switch (value) {
    case TransformType::kEncryption: return "ENCR";
    case TransformType::kPrf: return "PRF";
    case TransformType::kIntegrity: return "INTEG";
    case TransformType::kDiffieHellman: return "DH";
    case TransformType::kEsn: return "ESN";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(EncrId value) {
  switch (value) {
    case EncrId::kDes3: return "ENCR_3DES";
    case EncrId::kNull: return "ENCR_NULL";
    case EncrId::kAesCbc: return "ENCR_AES_CBC";
    case EncrId::kAesCtr: return "ENCR_AES_CTR";
    case EncrId::kAesGcm8: return "ENCR_AES_GCM_8";
    case EncrId::kAesGcm12: return "ENCR_AES_GCM_12";
    case EncrId::kAesGcm16: return "ENCR_AES_GCM_16";
    case EncrId::kChacha20Poly1305: return "ENCR_CHACHA20_POLY1305";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(PrfId value) {
  switch (value) {
    case PrfId::kHmacSha1: return "PRF_HMAC_SHA1";
    case PrfId::kHmacSha2_256: return "PRF_HMAC_SHA2_256";
    case PrfId::kHmacSha2_384: return "PRF_HMAC_SHA2_384";
    case PrfId::kHmacSha2_512: return "PRF_HMAC_SHA2_512";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(IntegId value) {
  switch (value) {
    case IntegId::kNone: return "NONE";
    case IntegId::kHmacSha1_96: return "AUTH_HMAC_SHA1_96";
    case IntegId::kHmacSha2_256_128: return "AUTH_HMAC_SHA2_256_128";
    case IntegId::kHmacSha2_384_192: return "AUTH_HMAC_SHA2_384_192";
    case IntegId::kHmacSha2_512_256: return "AUTH_HMAC_SHA2_512_256";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(DhId value) {
  switch (value) {
    case DhId::kNone: return "NONE";
    case DhId::kModp2048: return "MODP_2048";
    case DhId::kModp3072: return "MODP_3072";
    case DhId::kModp4096: return "MODP_4096";
    case DhId::kEcp256: return "ECP_256";
    case DhId::kEcp384: return "ECP_384";
    case DhId::kEcp521: return "ECP_521";
    case DhId::kCurve25519: return "CURVE25519";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(EsnId value) {
  switch (value) {
    case EsnId::kNoEsn: return "NO_ESN";
    case EsnId::kEsn: return "ESN";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(TransformAttributeType value) {
  switch (value) {
    case TransformAttributeType::kKeyLength: return "KEY_LENGTH";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(ProtocolId value) {
  switch (value) {
    case ProtocolId::kNone: return "NONE";
    case ProtocolId::kIke: return "IKE";
    case ProtocolId::kAh: return "AH";
    case ProtocolId::kEsp: return "ESP";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(IdType value) {
  switch (value) {
    case IdType::kIpv4Address: return "ID_IPV4_ADDR";
    case IdType::kFqdn: return "ID_FQDN";
    case IdType::kRfc822Address: return "ID_RFC822_ADDR";
    case IdType::kIpv6Address: return "ID_IPV6_ADDR";
    case IdType::kDerAsn1Dn: return "ID_DER_ASN1_DN";
    case IdType::kDerAsn1Gn: return "ID_DER_ASN1_GN";
    case IdType::kKeyId: return "ID_KEY_ID";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(AuthMethod value) {
  switch (value) {
    case AuthMethod::kRsaDigitalSignature: return "RSA_DIGITAL_SIGNATURE";
    case AuthMethod::kSharedKeyMic: return "SHARED_KEY_MIC";
    case AuthMethod::kDssDigitalSignature: return "DSS_DIGITAL_SIGNATURE";
    case AuthMethod::kEcdsaSha256P256: return "ECDSA_SHA256_P256";
    case AuthMethod::kEcdsaSha384P384: return "ECDSA_SHA384_P384";
    case AuthMethod::kEcdsaSha512P521: return "ECDSA_SHA512_P521";
    case AuthMethod::kDigitalSignature: return "DIGITAL_SIGNATURE";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(CertEncoding value) {
  switch (value) {
    case CertEncoding::kX509Signature: return "X509_CERTIFICATE_SIGNATURE";
    case CertEncoding::kHashAndUrlX509: return "HASH_AND_URL_X509_CERTIFICATE";
    case CertEncoding::kHashAndUrlX509Bundle: return "HASH_AND_URL_X509_BUNDLE";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(NotifyType value) {
  switch (value) {
    case NotifyType::kUnsupportedCriticalPayload: return "UNSUPPORTED_CRITICAL_PAYLOAD";
    case NotifyType::kInvalidIkeSpi: return "INVALID_IKE_SPI";
    case NotifyType::kInvalidMajorVersion: return "INVALID_MAJOR_VERSION";
    case NotifyType::kInvalidSyntax: return "INVALID_SYNTAX";
    case NotifyType::kInvalidMessageId: return "INVALID_MESSAGE_ID";
    case NotifyType::kInvalidSpi: return "INVALID_SPI";
    case NotifyType::kNoProposalChosen: return "NO_PROPOSAL_CHOSEN";
    case NotifyType::kInvalidKePayload: return "INVALID_KE_PAYLOAD";
    case NotifyType::kAuthenticationFailed: return "AUTHENTICATION_FAILED";
    case NotifyType::kSinglePairRequired: return "SINGLE_PAIR_REQUIRED";
    case NotifyType::kNoAdditionalSas: return "NO_ADDITIONAL_SAS";
    case NotifyType::kInternalAddressFailure: return "INTERNAL_ADDRESS_FAILURE";
    case NotifyType::kFailedCpRequired: return "FAILED_CP_REQUIRED";
    case NotifyType::kTsUnacceptable: return "TS_UNACCEPTABLE";
    case NotifyType::kInvalidSelectors: return "INVALID_SELECTORS";
    case NotifyType::kUnacceptableAddresses: return "UNACCEPTABLE_ADDRESSES";
    case NotifyType::kUnexpectedNatDetected: return "UNEXPECTED_NAT_DETECTED";
    case NotifyType::kTemporaryFailure: return "TEMPORARY_FAILURE";
    case NotifyType::kChildSaNotFound: return "CHILD_SA_NOT_FOUND";
    case NotifyType::kInitialContact: return "INITIAL_CONTACT";
    case NotifyType::kSetWindowSize: return "SET_WINDOW_SIZE";
    case NotifyType::kAdditionalTsPossible: return "ADDITIONAL_TS_POSSIBLE";
    case NotifyType::kIpcompSupported: return "IPCOMP_SUPPORTED";
    case NotifyType::kNatDetectionSourceIp: return "NAT_DETECTION_SOURCE_IP";
    case NotifyType::kNatDetectionDestinationIp: return "NAT_DETECTION_DESTINATION_IP";
    case NotifyType::kCookie: return "COOKIE";
    case NotifyType::kUseTransportMode: return "USE_TRANSPORT_MODE";
    case NotifyType::kHttpCertLookupSupported: return "HTTP_CERT_LOOKUP_SUPPORTED";
    case NotifyType::kRekeySa: return "REKEY_SA";
    case NotifyType::kEspTfcPaddingNotSupported: return "ESP_TFC_PADDING_NOT_SUPPORTED";
    case NotifyType::kNonFirstFragmentsAlso: return "NON_FIRST_FRAGMENTS_ALSO";
    case NotifyType::kMobikeSupported: return "MOBIKE_SUPPORTED";
    case NotifyType::kAdditionalIp4Address: return "ADDITIONAL_IP4_ADDRESS";
    case NotifyType::kAdditionalIp6Address: return "ADDITIONAL_IP6_ADDRESS";
    case NotifyType::kNoAdditionalAddresses: return "NO_ADDITIONAL_ADDRESSES";
    case NotifyType::kUpdateSaAddresses: return "UPDATE_SA_ADDRESSES";
    case NotifyType::kCookie2: return "COOKIE2";
    case NotifyType::kNoNatsAllowed: return "NO_NATS_ALLOWED";
    case NotifyType::kIkev2FragmentationSupported: return "IKEV2_FRAGMENTATION_SUPPORTED";
    case NotifyType::kSignatureHashAlgorithms: return "SIGNATURE_HASH_ALGORITHMS";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(HashAlgorithm value) {
  switch (value) {
    case HashAlgorithm::kSha1: return "SHA1";
    case HashAlgorithm::kSha2_256: return "SHA2_256";
    case HashAlgorithm::kSha2_384: return "SHA2_384";
    case HashAlgorithm::kSha2_512: return "SHA2_512";
    case HashAlgorithm::kIdentity: return "IDENTITY";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(CpType value) {
  switch (value) {
    case CpType::kRequest: return "CFG_REQUEST";
    case CpType::kReply: return "CFG_REPLY";
    case CpType::kSet: return "CFG_SET";
    case CpType::kAck: return "CFG_ACK";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(CpAttributeType value) {
  switch (value) {
    case CpAttributeType::kInternalIp4Address: return "INTERNAL_IP4_ADDRESS";
    case CpAttributeType::kInternalIp4Netmask: return "INTERNAL_IP4_NETMASK";
    case CpAttributeType::kInternalIp4Dns: return "INTERNAL_IP4_DNS";
    case CpAttributeType::kInternalIp4Nbns: return "INTERNAL_IP4_NBNS";
    case CpAttributeType::kInternalAddressExpiry: return "INTERNAL_ADDRESS_EXPIRY";
    case CpAttributeType::kInternalIp4Dhcp: return "INTERNAL_IP4_DHCP";
    case CpAttributeType::kApplicationVersion: return "APPLICATION_VERSION";
    case CpAttributeType::kInternalIp6Address: return "INTERNAL_IP6_ADDRESS";
    case CpAttributeType::kInternalIp6Dns: return "INTERNAL_IP6_DNS";
    case CpAttributeType::kInternalIp6Dhcp: return "INTERNAL_IP6_DHCP";
    case CpAttributeType::kInternalIp4Subnet: return "INTERNAL_IP4_SUBNET";
    case CpAttributeType::kSupportedAttributes: return "SUPPORTED_ATTRIBUTES";
    case CpAttributeType::kInternalIp6Subnet: return "INTERNAL_IP6_SUBNET";
    case CpAttributeType::kExternalSourceIp4NatInfo: return "EXTERNAL_SOURCE_IP4_NAT_INFO";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string to_string(TsType value) {
  switch (value) {
    case TsType::kIpv4AddressRange: return "TS_IPV4_ADDR_RANGE";
    case TsType::kIpv6AddressRange: return "TS_IPV6_ADDR_RANGE";
  }
  return unknown(static_cast<unsigned>(value));
}

std::string transform_id_to_string(TransformType type, uint16_t id) {
  switch (type) {
    case TransformType::kEncryption: return to_string(static_cast<EncrId>(id));
    case TransformType::kPrf: return to_string(static_cast<PrfId>(id));
    case TransformType::kIntegrity: return to_string(static_cast<IntegId>(id));
    case TransformType::kDiffieHellman: return to_string(static_cast<DhId>(id));
    case TransformType::kEsn: return to_string(static_cast<EsnId>(id));
  }
  return unknown(id);
}

}  // namespace segw::cp::ike
