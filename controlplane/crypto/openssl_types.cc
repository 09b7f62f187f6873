// OpenSSL error queue to text.
#include "controlplane/crypto/openssl_types.h"

#include <openssl/err.h>

namespace segw::cp::crypto {

std::string drain_openssl_errors() {
  std::string text;
  char buffer[256];
  while (unsigned long code = ERR_get_error()) {
    ERR_error_string_n(code, buffer, sizeof(buffer));
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? std::string("no OpenSSL error detail") : text;
}

shared::Error openssl_error(std::string_view what) {
  return shared::make_error(std::string(what) + ": " + drain_openssl_errors());
}

}  // namespace segw::cp::crypto
