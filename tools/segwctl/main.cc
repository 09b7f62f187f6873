// segwctl: the operator's client of segw-controlplane's REST API
// (controlplane/api/openapi.yaml): lists and shows IKE SAs, terminates,
// rekeys and moves them, prints the engine's counters, and follows the
// event stream. Human output is aligned tables; --json prints the server's
// JSON as it came, for scripts.
//
// Exit codes: 0 ok, 1 the server refused (its error is printed), 2 usage,
// 3 no answer (connection, TLS, timeout).
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "controlplane/config/controlplane_config.h"

namespace po = boost::program_options;
using nlohmann::json;

namespace {

enum ExitCode : int { kExitOk = 0, kExitRefused = 1, kExitUsage = 2, kExitNoAnswer = 3 };

struct Options {
  std::string server;
  std::string token;
  bool json_output = false;
  bool insecure = false;
  std::string ca_file;
  std::string client_certificate;  // mTLS: our certificate and key (PEM), both or neither
  std::string client_key;
  double timeout_s = 10;
};

// A table printed with each column as wide as its widest cell.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print() const {
    std::vector<size_t> width;
    for (const auto& row : rows_) {
      if (width.size() < row.size()) width.resize(row.size(), 0);
      for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    }
    for (const auto& row : rows_) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
      }
      std::printf("%s\n", line.c_str());
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

// A JSON value as table text: strings bare, null as "-".
std::string text(const json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
  return value.dump();
}

std::string endpoint_text(const json& endpoint) {
  if (!endpoint.is_object()) return "-";
  std::string address = text(endpoint.value("address", json()));
  if (address.find(':') != std::string::npos) address = "[" + address + "]";
  return address + ":" + text(endpoint.value("port", json()));
}

std::string inner_text(const json& sa) {
  std::string inner;
  for (const char* key : {"inner_ipv4", "inner_ipv6"}) {
    if (!sa.contains(key) || sa[key].is_null()) continue;
    if (!inner.empty()) inner += ",";
    inner += sa[key].get<std::string>();
  }
  return inner.empty() ? "-" : inner;
}

std::string age_text(const json& seconds) {
  if (!seconds.is_number()) return "-";
  uint64_t s = seconds.get<uint64_t>();
  char buffer[32];
  if (s >= 3600)
    std::snprintf(buffer, sizeof buffer, "%luh%02lum", (unsigned long)(s / 3600), (unsigned long)(s % 3600 / 60));
  else if (s >= 60)
    std::snprintf(buffer, sizeof buffer, "%lum%02lus", (unsigned long)(s / 60), (unsigned long)(s % 60));
  else
    std::snprintf(buffer, sizeof buffer, "%lus", (unsigned long)s);
  return buffer;
}

std::string selectors_text(const json& list) {
  std::string out;
  for (const auto& ts : list) {
    if (!out.empty()) out += " ";
    out += text(ts.value("start", json())) + "-" + text(ts.value("end", json()));
    if (ts.value("protocol", 0) != 0) out += "/proto " + text(ts["protocol"]);
    if (ts.value("port_start", 0) != 0 || ts.value("port_end", 65535) != 65535)
      out += "/ports " + text(ts["port_start"]) + "-" + text(ts["port_end"]);
  }
  return out.empty() ? "-" : out;
}

std::string percent_encode(const std::string& value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(char(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

class Api {
 public:
  explicit Api(const Options& options)
      : options_(options), client_(options.server, options.client_certificate, options.client_key) {
    client_.set_connection_timeout(std::chrono::duration<double>(options.timeout_s));
    client_.set_read_timeout(std::chrono::duration<double>(options.timeout_s));
    client_.set_write_timeout(std::chrono::duration<double>(options.timeout_s));
    if (!options.token.empty()) client_.set_bearer_token_auth(options.token.c_str());
    client_.enable_server_certificate_verification(!options.insecure);
    if (!options.ca_file.empty()) client_.set_ca_cert_path(options.ca_file.c_str());
  }
  bool valid() const { return client_.is_valid(); }
  httplib::Client& client() { return client_; }

  // The server's JSON for a request; exits with the right code otherwise.
  // `echo`: with --json, print the answer as it came (false: the caller
  // prints something it made of several answers).
  json call(const std::string& method, const std::string& path, const std::string& body = "", bool echo = true) {
    httplib::Result result = method == "GET"      ? client_.Get(path.c_str())
                             : method == "DELETE" ? client_.Delete(path.c_str())
                                                  : client_.Post(path.c_str(), body, "application/json");
    if (!result) {
      std::fprintf(stderr, "segwctl: %s %s%s: %s\n", method.c_str(), options_.server.c_str(), path.c_str(),
                   httplib::to_string(result.error()).c_str());
      std::exit(kExitNoAnswer);
    }
    if (result->status < 200 || result->status > 299) {
      json error = json::parse(result->body, nullptr, false);
      std::string what = !error.is_discarded() && error.is_object() && error.contains("error")
                             ? text(error["error"])
                             : result->body;
      std::fprintf(stderr, "segwctl: %s %s: HTTP %d: %s\n", method.c_str(), path.c_str(), result->status,
                   what.c_str());
      std::exit(kExitRefused);
    }
    if (options_.json_output && echo) std::printf("%s\n", result->body.c_str());
    json parsed = json::parse(result->body, nullptr, false);
    if (parsed.is_discarded()) {
      std::fprintf(stderr, "segwctl: %s %s: the answer is not JSON\n", method.c_str(), path.c_str());
      std::exit(kExitRefused);
    }
    return parsed;
  }

 private:
  const Options& options_;
  httplib::Client client_;
};

void print_list(const json& body) {
  Table table({"ID", "STATE", "PEER", "REMOTE", "INNER", "NAT", "CHILDREN", "UP"});
  for (const auto& sa : body.value("ike_sas", json::array())) {
    table.add({text(sa["id"]), text(sa["state"]), sa.value("peer_id", "").empty() ? "-" : text(sa["peer_id"]),
               endpoint_text(sa["remote"]), inner_text(sa), sa["nat"].value("peer_behind_nat", false) ? "peer" : "-",
               std::to_string(sa.value("children", json::array()).size()), age_text(sa["established_age_s"])});
  }
  table.print();
}

// "/32"
std::string prefix_text(const json& length) {
  std::string out("/");
  out.append(text(length));
  return out;
}

void print_pools(const json& body) {
  Table table({"POOL", "FAMILY", "RANGE", "LEASE", "SIZE", "IN USE", "NEVER USED", "EXCLUDED"});
  for (const auto& pool : body.value("pools", json::array()))
    table.add({text(pool["name"]), text(pool["family"]), text(pool["range"]), prefix_text(pool["lease_prefix_length"]),
               text(pool["size"]), text(pool["in_use"]), text(pool["never_used"]), text(pool["excluded"])});
  table.print();
}

void print_pool(const json& pool) {
  json list;
  list["pools"] = json::array({pool});
  print_pools(list);
  std::printf("\n");
  Table table({"ADDRESS", "IKE SA", "PEER"});
  for (const auto& lease : pool.value("leases", json::array()))
    table.add({text(lease["address"]).append(prefix_text(lease["prefix_length"])), text(lease["ike_sa"]),
               lease.value("peer_id", "").empty() ? "-" : text(lease["peer_id"])});
  table.print();
}

void print_dataplane(const json& body) {
  std::printf("data plane %s; figures %s ms old\n\n", body.value("alive", false) ? "alive" : "NOT alive",
              text(body.value("refreshed_age_ms", json())).c_str());
  Table ports({"PORT", "RX PACKETS", "RX PPS", "TX PACKETS", "TX PPS", "RX MISSED", "RX ERRORS", "TX ERRORS"});
  for (const auto& p : body.value("ports", json::array()))
    ports.add({text(p["name"]), text(p["rx_packets"]), text(p["rx_packets_per_second"]), text(p["tx_packets"]),
               text(p["tx_packets_per_second"]), text(p["rx_missed"]), text(p["rx_errors"]), text(p["tx_errors"])});
  ports.print();
  std::printf("\n");
  Table workers({"WORKER", "LCORE", "RX PACKETS", "RX PPS", "DECAPSULATED", "ENCAPSULATED", "DROPS"});
  for (const auto& w : body.value("workers", json::array()))
    workers.add({text(w["index"]), text(w["lcore"]), text(w["rx_packets"]), text(w["rx_packets_per_second"]),
                 text(w["decapsulated"]), text(w["encapsulated"]), text(w["drops"])});
  workers.print();
  std::printf("\n");
  Table queues({"QUEUE", "DEPTH", "CAPACITY"});
  for (const auto& q : body.value("queues", json::array()))
    queues.add({text(q["name"]), text(q["depth"]), text(q["capacity"])});
  queues.print();
  std::printf("\n");
  Table drops({"DROP REASON", "PACKETS"});
  for (const auto& [reason, packets] : body.value("drops", json::object()).items())
    if (packets.is_number() && packets.get<uint64_t>() > 0) drops.add({reason, text(packets)});
  drops.print();
}

void print_sa(const json& sa) {
  Table fields({"IKE SA", text(sa["id"])});
  auto field = [&](const char* name, const std::string& value) { fields.add({name, value}); };
  field("state", text(sa["state"]));
  field("role", sa.value("initiator", false) ? "initiator" : "responder");
  field("spis", text(sa["spi_i"]) + " " + text(sa["spi_r"]));
  field("local", endpoint_text(sa["local"]));
  field("remote", endpoint_text(sa["remote"]));
  field("peer", text(sa["peer_id"]));
  field("profile", text(sa["profile"]));
  std::string nat = "-";
  if (sa["nat"].value("peer_behind_nat", false)) nat = "peer";
  if (sa["nat"].value("local_behind_nat", false)) nat = nat == "-" ? "local" : nat + ", local";
  field("nat", nat);
  field("udp encapsulation", text(sa["udp_encapsulation"]));
  field("mobike", text(sa["mobike"]));
  field("fragmentation", text(sa["fragmentation"]));
  field("inner", inner_text(sa));
  field("algorithms", text(sa["ike_algorithms"]));
  field("up", age_text(sa["established_age_s"]));
  field("rekey in", age_text(sa["rekey_in_s"]));
  if (sa.contains("nat_info") && !sa["nat_info"].is_null()) field("nat info", endpoint_text(sa["nat_info"]));
  fields.print();
  const json& children = sa["children"];
  if (!children.is_array() || children.empty()) return;
  std::printf("\n");
  Table table({"SPI IN", "SPI OUT", "ALGORITHM", "ESN", "INSTALLED", "UP", "REKEY IN", "LOCAL TS", "REMOTE TS"});
  for (const auto& child : children)
    table.add({text(child["inbound_spi"]), text(child["outbound_spi"]), text(child["algorithm"]), text(child["esn"]),
               text(child["installed"]), age_text(child["established_age_s"]), age_text(child["rekey_in_s"]),
               selectors_text(child["local_ts"]), selectors_text(child["remote_ts"])});
  table.print();
}

void print_stats(const json& body) {
  Table table({"COUNTER", "VALUE"});
  for (const auto& [name, value] : body.items()) {
    if (value.is_object()) continue;
    table.add({name, text(value)});
  }
  for (const char* group : {"gauges", "api"}) {
    if (!body.contains(group)) continue;
    for (const auto& [name, value] : body[group].items()) table.add({std::string(group) + "." + name, text(value)});
  }
  table.print();
}

// One line per event: time, kind, IKE SA, peer, remote, inner, detail.
// False once stdout no longer takes output (the reader of a pipe went away:
// SIGPIPE is ignored, so that shows up here as EPIPE).
bool print_event(const std::string& data, bool raw) {
  if (raw) {
    std::printf("%s\n", data.c_str());
    return std::fflush(stdout) == 0;
  }
  json event = json::parse(data, nullptr, false);
  if (event.is_discarded() || !event.is_object()) return true;
  std::string line = text(event.value("time", json())) + "  " + text(event.value("kind", json()));
  if (event.contains("dropped")) {
    std::string reason = event.value("reason", "");
    if (reason == "restarted")
      line = "(the gateway's control plane restarted since that event: its events are gone; re-read the list)";
    else if (reason == "not_kept")
      line = "(" + text(event["dropped"]) + " events since that one are no longer kept: re-read the list)";
    else
      line = "(" + text(event["dropped"]) + " events dropped: this client was too slow)";
  } else {
    line += "  ike_sa " + text(event.value("ike_sa", json()));
    if (event.contains("sa") && !event["sa"].value("peer_id", "").empty()) line += "  peer " + text(event["sa"]["peer_id"]);
    line += "  remote " + endpoint_text(event.value("remote", json()));
    if (!event.value("inner_ipv4", json()).is_null()) line += "  inner " + text(event["inner_ipv4"]);
    if (!event.value("detail", "").empty()) line += "  (" + text(event["detail"]) + ")";
  }
  std::printf("%s\n", line.c_str());
  return std::fflush(stdout) == 0;
}

int watch(Api& api, const Options& options, const std::string& last_event_id) {
  // The server sends a comment at least every 15 s: a minute of silence is
  // a dead server.
  api.client().set_read_timeout(60, 0);
  std::string buffer;
  std::string data;
  int status = 0;
  std::string error_body;
  bool output_closed = false;
  httplib::Headers headers;
  if (!last_event_id.empty()) headers.emplace("Last-Event-ID", last_event_id);
  auto result = api.client().Get(
      "/v1/events", headers,
      [&](const httplib::Response& response) {
        status = response.status;
        return true;
      },
      [&](const char* bytes, size_t length) {
        if (status < 200 || status > 299) {
          error_body.append(bytes, length);
          return true;
        }
        buffer.append(bytes, length);
        size_t newline;
        while ((newline = buffer.find('\n')) != std::string::npos) {
          std::string line = buffer.substr(0, newline);
          buffer.erase(0, newline + 1);
          if (!line.empty() && line.back() == '\r') line.pop_back();
          if (line.empty()) {  // end of one event
            if (!data.empty() && !print_event(data, options.json_output)) {
              output_closed = true;
              return false;
            }
            data.clear();
          } else if (line.rfind("data:", 0) == 0) {
            std::string part = line.substr(line[5] == ' ' ? 6 : 5);
            if (!data.empty()) data += "\n";
            data += part;
          }
        }
        return true;
      });
  if (status != 0 && (status < 200 || status > 299)) {
    json error = json::parse(error_body, nullptr, false);
    std::string what = !error.is_discarded() && error.is_object() && error.contains("error") ? text(error["error"])
                                                                                            : error_body;
    std::fprintf(stderr, "segwctl: GET /v1/events: HTTP %d: %s\n", status, what.c_str());
    return kExitRefused;
  }
  if (output_closed) return kExitOk;  // like `segwctl watch | head`: the reader has what it wanted
  std::fprintf(stderr, "segwctl: the event stream ended: %s\n",
               result ? "closed by the server" : httplib::to_string(result.error()).c_str());
  return kExitNoAnswer;
}

// The server answers lists in pages (1000 items by default): follows
// next_after to the end and returns the first page's document with every
// page's `items` in it (next_after null).
json every_page(Api& api, const std::string& path, const std::string& query, const char* items) {
  json all = api.call("GET", path + query, "", false);
  for (json page = all; !page.value("next_after", json()).is_null();) {
    std::string next = path + query;
    next += query.empty() ? "?after=" : "&after=";
    next += percent_encode(text(page["next_after"]));
    page = api.call("GET", next, "", false);
    for (auto& item : page[items]) all[items].push_back(std::move(item));
  }
  all["next_after"] = nullptr;
  return all;
}

std::string read_token(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "segwctl: cannot read token file '%s'\n", path.c_str());
    std::exit(kExitUsage);
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string token = buffer.str();
  size_t first = token.find_first_not_of(" \t\r\n");
  size_t last = token.find_last_not_of(" \t\r\n");
  return first == std::string::npos ? "" : token.substr(first, last - first + 1);
}

const char* kUsage =
    "Usage: segwctl [options] COMMAND [arguments]\n"
    "\n"
    "Commands:\n"
    "  list [--identity ID] [--inner ADDR] [--public ADDR] [--page-size N]\n"
    "                               IKE SAs, optionally filtered (every page)\n"
    "  show ID                      one IKE SA and its child SAs\n"
    "  terminate ID                 delete the IKE SA (and its child SAs)\n"
    "  rekey ID [--child]           rekey the IKE SA (or its first child SA)\n"
    "  move ID ADDRESS PORT         put the IKE SA and its child SAs on a new peer address/port\n"
    "  pools [NAME] [--page-size N] address pools (size, in use); with NAME that pool's leases\n"
    "                               (every page)\n"
    "  dataplane                    the data plane's ports, workers, drops and queue depths\n"
    "  reload                       re-read the configuration file (validated first; tunnels stay up)\n"
    "  stats                        the engine's counters and gauges\n"
    "  watch [--last-event-id ID]   follow the event stream, one line per event, until Ctrl-C\n"
    "                               (with ID: first the events after that one; --json prints each\n"
    "                               event's id in its \"id\")\n"
    "\n";

}  // namespace

int main(int argc, char** argv) {
  // A TLS server that refuses our certificate (or none) may close the
  // connection while we still write the request; OpenSSL then writes to a
  // closed socket, and SIGPIPE would kill us with 141 instead of the
  // documented exit 3 and a message.
  std::signal(SIGPIPE, SIG_IGN);
  Options options;
  std::string token_file;
  std::string identity, inner, public_address, page_size, last_event_id;
  std::string command;
  std::vector<std::string> args;
  std::string default_server = "http://127.0.0.1:" + std::to_string(segw::cp::config::kDefaultApiPort);
  po::options_description visible("Options");
  visible.add_options()
      ("help,h", "this text")
      ("server,s", po::value<std::string>(&options.server)->default_value(default_server),
       "the API's URL (http:// or https://)")
      ("token-file", po::value<std::string>(&token_file),
       "file holding the bearer token (default: $SEGW_API_TOKEN; none for a loopback API without one)")
      ("json", "print the server's JSON (one document per line) instead of tables")
      ("insecure,k", "https: do not verify the server's certificate (self-signed)")
      ("ca-file", po::value<std::string>(&options.ca_file), "https: CA certificate(s) to verify the server with")
      ("client-cert", po::value<std::string>(&options.client_certificate),
       "https: our certificate (PEM) for a server that asks for one (api_tls_client_ca)")
      ("client-key", po::value<std::string>(&options.client_key), "https: the private key (PEM) of --client-cert")
      ("timeout", po::value<double>(&options.timeout_s)->default_value(10), "seconds to wait for an answer")
      ("identity", po::value<std::string>(&identity), "list: only IKE SAs of this peer identity")
      ("inner", po::value<std::string>(&inner), "list: only the IKE SA holding this inner address")
      ("public", po::value<std::string>(&public_address), "list: only IKE SAs whose peer is at this public address")
      ("page-size", po::value<std::string>(&page_size),
       "list, pools NAME: IKE SAs or leases per request (the server's default 1000, at most 10000); "
       "all pages are shown")
      ("child", "rekey: the first child SA instead of the IKE SA")
      ("last-event-id", po::value<std::string>(&last_event_id),
       "watch: resume after this event (its id), getting the ones missed first");
  po::options_description hidden;
  hidden.add_options()
      ("command", po::value<std::string>(&command))
      ("args", po::value<std::vector<std::string>>(&args));
  po::options_description all;
  all.add(visible).add(hidden);
  po::positional_options_description positional;
  positional.add("command", 1).add("args", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "segwctl: %s\n", e.what());
    std::cerr << kUsage << visible;
    return kExitUsage;
  }
  if (vm.count("help") || command.empty()) {
    std::cout << kUsage << visible;
    return command.empty() && !vm.count("help") ? kExitUsage : kExitOk;
  }
  options.json_output = vm.count("json") > 0;
  options.insecure = vm.count("insecure") > 0;
  if (!token_file.empty()) {
    options.token = read_token(token_file);
  } else if (const char* env = std::getenv("SEGW_API_TOKEN")) {
    options.token = env;
  }
  auto usage = [&](const std::string& what) {
    std::fprintf(stderr, "segwctl: %s\n%s", what.c_str(), kUsage);
    return kExitUsage;
  };
  auto want_args = [&](size_t n) { return args.size() == n; };
  bool list_filters = vm.count("identity") || vm.count("inner") || vm.count("public");
  if (list_filters && command != "list") return usage("--identity, --inner and --public go with list");
  if (vm.count("page-size") && command != "list" && command != "pools")
    return usage("--page-size goes with list and pools");
  if (vm.count("child") && command != "rekey") return usage("--child goes with rekey");
  if (vm.count("last-event-id") && command != "watch") return usage("--last-event-id goes with watch");
  if (options.client_certificate.empty() != options.client_key.empty())
    return usage("--client-cert and --client-key go together");

  if (options.server.rfind("http://", 0) != 0 && options.server.rfind("https://", 0) != 0)
    return usage("--server '" + options.server + "' is not an http:// or https:// URL");
  std::unique_ptr<Api> client;
  try {
    client = std::make_unique<Api>(options);
  } catch (const std::exception& e) {  // httplib refuses what it cannot parse by throwing
    return usage("--server '" + options.server + "': " + e.what());
  }
  if (!client->valid()) return usage("--server '" + options.server + "' is not an http:// or https:// URL");
  Api& api = *client;

  if (command == "list") {
    if (!want_args(0)) return usage("list takes no arguments (filters are --identity, --inner, --public)");
    std::string query;
    auto add = [&](const char* key, const std::string& value) {
      if (!vm.count(key)) return;
      query += query.empty() ? "?" : "&";
      query += key;
      query += "=";
      query += percent_encode(value);
    };
    add("identity", identity);
    add("inner", inner);
    add("public", public_address);
    // The server checks the value (its error says what is wrong).
    if (vm.count("page-size")) {
      query += query.empty() ? "?" : "&";
      query += "limit=";
      query += percent_encode(page_size);
    }
    json all = every_page(api, "/v1/ike-sas", query, "ike_sas");
    if (options.json_output)
      std::printf("%s\n", all.dump().c_str());
    else
      print_list(all);
  } else if (command == "show") {
    if (!want_args(1)) return usage("show takes an IKE SA id");
    json body = api.call("GET", "/v1/ike-sas/" + percent_encode(args[0]));
    if (!options.json_output) print_sa(body);
  } else if (command == "terminate") {
    if (!want_args(1)) return usage("terminate takes an IKE SA id");
    json body = api.call("DELETE", "/v1/ike-sas/" + percent_encode(args[0]));
    if (!options.json_output) std::printf("IKE SA %s: deleting\n", args[0].c_str());
  } else if (command == "rekey") {
    if (!want_args(1)) return usage("rekey takes an IKE SA id");
    bool child = vm.count("child") > 0;
    json body = api.call("POST", "/v1/ike-sas/" + percent_encode(args[0]) + "/rekey",
                         child ? std::string(R"({"child":true})") : std::string("{}"));
    if (!options.json_output) std::printf("IKE SA %s: %s rekey started\n", args[0].c_str(), child ? "child SA" : "IKE SA");
  } else if (command == "move") {
    if (!want_args(3)) return usage("move takes an IKE SA id, an address and a port");
    json request;
    request["address"] = args[1];
    // The server validates the range; a non-number is sent as a string so
    // that its error says what was wrong.
    char* end = nullptr;
    long port = std::strtol(args[2].c_str(), &end, 10);
    if (!args[2].empty() && end && *end == '\0')
      request["port"] = port;
    else
      request["port"] = args[2];
    json body = api.call("POST", "/v1/ike-sas/" + percent_encode(args[0]) + "/move", request.dump());
    if (!options.json_output)
      std::printf("IKE SA %s: now at %s\n", args[0].c_str(), endpoint_text(body.value("remote", json())).c_str());
  } else if (command == "pools") {
    if (args.size() > 1) return usage("pools takes at most a pool name");
    if (args.empty()) {
      json body = api.call("GET", "/v1/pools");
      if (!options.json_output) print_pools(body);
    } else {
      std::string query = vm.count("page-size") ? "?limit=" + percent_encode(page_size) : "";
      json all = every_page(api, "/v1/pools/" + percent_encode(args[0]), query, "leases");
      if (options.json_output)
        std::printf("%s\n", all.dump().c_str());
      else
        print_pool(all);
    }
  } else if (command == "dataplane") {
    if (!want_args(0)) return usage("dataplane takes no arguments");
    json body = api.call("GET", "/v1/dataplane");
    if (!options.json_output) print_dataplane(body);
  } else if (command == "reload") {
    if (!want_args(0)) return usage("reload takes no arguments");
    json body = api.call("POST", "/v1/config/reload", "{}");
    if (!options.json_output)
      std::printf("configuration reloaded: %s profile(s), %s pool(s) (%s rebuilt), %s secret(s); %s IKE SA(s) kept\n",
                  text(body["profiles"]).c_str(), text(body["pools"]).c_str(), text(body["pools_rebuilt"]).c_str(),
                  text(body["secrets"]).c_str(), text(body["ike_sas"]).c_str());
  } else if (command == "stats") {
    if (!want_args(0)) return usage("stats takes no arguments");
    json body = api.call("GET", "/v1/stats");
    if (!options.json_output) print_stats(body);
  } else if (command == "watch") {
    if (!want_args(0)) return usage("watch takes no arguments");
    return watch(api, options, last_event_id);
  } else {
    return usage("unknown command '" + command + "'");
  }
  return kExitOk;
}
