// segwctl-dp: drives a running segw-dataplane through its shared-memory
// channel, without segw-controlplane: install SAs from a static SA file,
// remove one, move a tunnel's path, dump the SA inventory and counters,
// print events, wait until the data plane is ready.
//
// A region has one control side at a time (region.h). Commands that change
// SAs or read events (install, remove, move, events) attach as that control
// side for the length of the invocation; while segw-controlplane (or another
// segwctl-dp) is attached they fail with exit code 3 and say so. dump and
// wait-ready only observe (a read-only mapping) and work beside a daemon.
// SAs installed here stay in the data plane after segwctl-dp exits; nobody
// owns them, so a data plane restart does not get them back.
#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <future>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/program_options.hpp>

#include "controlplane/dp_link/data_plane_link.h"
#include "controlplane/dp_link/region_observer.h"
#include "controlplane/dp_link/sa_inventory_reader.h"
#include "shared/config_file.h"
#include "shared/static_sa.h"

namespace po = boost::program_options;
namespace dp_link = segw::cp::dp_link;
namespace channel = segw::shared::channel;
using segw::shared::IpAddress;
using segw::shared::PathDescriptor;
using segw::shared::SaDescriptor;
using segw::shared::SaDirection;

namespace {

// Exit codes (documented in --help and controlplane/README.md).
enum ExitCode : int {
  kExitOk = 0,
  kExitRefused = 1,       // the data plane refused a command, or it did not complete
  kExitUsage = 2,         // bad arguments
  kExitChannel = 3,       // cannot attach/observe: no region, version, another control plane
  kExitTimeout = 4,       // wait-ready: not ready in time; commands: no room in time
  kExitConfig = 5,        // the static SA file cannot be read or is invalid
};

constexpr const char* kExitCodeHelp =
    "Exit codes:\n"
    "  0  success\n"
    "  1  the data plane refused a command or did not complete it in time\n"
    "  2  usage error (unknown command or option, bad value)\n"
    "  3  channel error: no region of that name, a region of another build, or another\n"
    "     control plane (segw-controlplane, another segwctl-dp) is attached\n"
    "  4  timed out: wait-ready saw no live data plane, or commands found no room\n"
    "  5  the static SA file cannot be read or is invalid, or --sa names no section\n";

constexpr const char* kCommandHelp =
    "Commands:\n"
    "  install --config FILE [--sa NAME...]\n"
    "      Install the [sa NAME] sections of a static SA file (configs/README.md;\n"
    "      `count = N` sections expand to N SAs); --sa limits it to the named sections.\n"
    "  remove --spi SPI --direction in|out\n"
    "      Remove one SA (SPI decimal or 0x hex).\n"
    "  move --tunnel ID --local ADDR --remote ADDR[:PORT] [--local-port P] [--no-udp]\n"
    "      Publish a new outer path for every SA of tunnel ID. Ports default to 4500;\n"
    "      an IPv6 remote with a port is written [ADDR]:PORT. --no-udp: raw ESP\n"
    "      (no UDP encapsulation, ports ignored).\n"
    "  dump\n"
    "      The region's state and its SA inventory with per-SA counters (no keys).\n"
    "      Read-only: works beside a running segw-controlplane.\n"
    "  events [--count N]\n"
    "      Print data plane events as they arrive, one per line; stop after N (0: until\n"
    "      interrupted).\n"
    "  wait-ready [--wait MS]\n"
    "      Wait until the region exists and the data plane's heartbeat is live.\n"
    "      Read-only.\n"
    "Every command takes --help for its own options.\n";

struct GlobalOptions {
  std::string channel = "segw";
  std::string directory;
  unsigned timeout_ms = 5000;
};

volatile std::sig_atomic_t g_interrupted = 0;
void on_signal(int) { g_interrupted = 1; }

int usage_error(const std::string& message) {
  std::cerr << "segwctl-dp: " << message << " (see segwctl-dp --help)\n";
  return kExitUsage;
}

std::string endpoint_text(const IpAddress& address, uint16_t port) {
  // Appended piecewise: GCC 12 reports a false -Wrestrict for "[" + string.
  std::string text;
  if (address.is_ipv6()) text += '[';
  text += address.to_string();
  if (address.is_ipv6()) text += ']';
  text += ':';
  text += std::to_string(port);
  return text;
}

std::string spi_text(uint32_t spi) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", spi);
  return text;
}

std::optional<SaDirection> parse_direction(const std::string& text) {
  if (text == "in" || text == "inbound") return SaDirection::kInbound;
  if (text == "out" || text == "outbound") return SaDirection::kOutbound;
  return std::nullopt;
}

// "1.2.3.4", "1.2.3.4:4500", "[2001:db8::1]:4500", "2001:db8::1".
bool parse_address_and_port(const std::string& text, IpAddress& address,
                            std::optional<uint16_t>& port) {
  std::string host = text;
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos) return false;
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') return false;
      port_text = text.substr(close + 2);
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    host = text.substr(0, text.find(':'));
    port_text = text.substr(text.find(':') + 1);
  }
  auto parsed = IpAddress::parse(host);
  if (!parsed) return false;
  address = *parsed;
  if (!port_text.empty()) {
    auto value = segw::shared::parse_integer(port_text);
    if (!value || *value == 0 || *value > 65535) return false;
    port = static_cast<uint16_t>(*value);
  }
  return true;
}

// Attaches as the control plane for commands that change SAs or read events.
std::unique_ptr<dp_link::DataPlaneLink> attach_link(const GlobalOptions& global, int& exit_code) {
  dp_link::DataPlaneLinkOptions options;
  options.region_name = global.channel;
  options.directory = global.directory;
  options.submit_timeout = std::chrono::milliseconds(global.timeout_ms);
  options.command_timeout = std::chrono::milliseconds(global.timeout_ms);
  // A short-lived tool: if the data plane restarts under it, report that
  // rather than re-push what it never owned for long.
  options.follow_restarts = false;
  auto link = dp_link::DataPlaneLink::attach(options);
  if (!link) {
    std::cerr << "segwctl-dp: " << link.error() << "\n";
    exit_code = kExitChannel;
    return nullptr;
  }
  if (!(*link)->wait_for_state(dp_link::LinkState::kAttached,
                               std::chrono::milliseconds(global.timeout_ms))) {
    std::cerr << "segwctl-dp: data plane of " << (*link)->region_path()
              << " is not alive (no heartbeat within " << global.timeout_ms << " ms)\n";
    exit_code = kExitTimeout;
    return nullptr;
  }
  return std::move(*link);
}

// Waits for one command's result; prints failures. True when it is ok.
bool report(std::future<dp_link::CommandResult>& future, const std::string& what) {
  dp_link::CommandResult result = future.get();  // the link bounds the wait (command timeout)
  if (result.ok()) return true;
  std::cerr << "segwctl-dp: " << what << ": " << result.to_string() << "\n";
  return false;
}

// Runs a subcommand's own options; returns nullopt after printing help or an error.
std::optional<po::variables_map> parse_subcommand(const std::string& name,
                                                  const po::options_description& options,
                                                  const std::vector<std::string>& arguments,
                                                  int& exit_code) {
  po::variables_map values;
  try {
    po::store(po::command_line_parser(arguments).options(options).run(), values);
    if (values.count("help") != 0) {
      std::cout << "usage: segwctl-dp [global options] " << name << " [options]\n" << options;
      exit_code = kExitOk;
      return std::nullopt;
    }
    po::notify(values);
  } catch (const po::error& error) {
    exit_code = usage_error(name + ": " + error.what());
    return std::nullopt;
  }
  return values;
}

int run_install(const GlobalOptions& global, const std::vector<std::string>& arguments) {
  po::options_description options("install options");
  options.add_options()
      ("help,h", "this help")
      ("config", po::value<std::string>()->required(), "static SA file ([sa NAME] sections)")
      ("sa", po::value<std::vector<std::string>>()->multitoken(),
       "install only these sections (repeatable)");
  int exit_code = kExitOk;
  auto values = parse_subcommand("install", options, arguments, exit_code);
  if (!values) return exit_code;

  std::string path = (*values)["config"].as<std::string>();
  auto file = segw::shared::ConfigFile::load(path);
  if (!file) {
    std::cerr << "segwctl-dp: " << file.error() << "\n";
    return kExitConfig;
  }
  auto set = segw::shared::parse_static_sas(*file);
  if (!set) {
    std::cerr << "segwctl-dp: " << set.error() << "\n";
    return kExitConfig;
  }
  std::set<std::string> wanted;
  if (values->count("sa") != 0) {
    for (const std::string& name : (*values)["sa"].as<std::vector<std::string>>()) wanted.insert(name);
  }
  std::set<std::string> found;
  std::vector<const segw::shared::StaticSaTemplate*> chosen;
  for (const auto& sa_template : set->templates) {
    std::string name(sa_template.base.name_view());
    if (!wanted.empty() && !wanted.contains(name)) continue;
    found.insert(name);
    chosen.push_back(&sa_template);
  }
  for (const std::string& name : wanted) {
    if (!found.contains(name)) {
      std::cerr << "segwctl-dp: " << path << " has no [sa " << name << "] section\n";
      return kExitConfig;
    }
  }
  if (chosen.empty()) {
    std::cerr << "segwctl-dp: " << path << " has no [sa NAME] sections\n";
    return kExitConfig;
  }

  auto link = attach_link(global, exit_code);
  if (!link) return exit_code;
  struct Submitted {
    std::future<dp_link::CommandResult> future;
    std::string what;
  };
  std::vector<Submitted> submitted;
  size_t failures = 0;
  auto started = std::chrono::steady_clock::now();
  for (const auto* sa_template : chosen) {
    for (uint32_t index = 0; index < sa_template->count; ++index) {
      SaDescriptor sa = sa_template->expand(index);
      std::string what = "install " + spi_text(sa.spi) + " " + segw::shared::to_string(sa.direction) +
                         " (" + std::string(sa.name_view()) + ")";
      auto future = link->install(sa);
      segw::shared::secure_zero(sa);
      if (!future) {
        std::cerr << "segwctl-dp: " << what << ": " << future.error() << "\n";
        for (Submitted& earlier : submitted) (void)report(earlier.future, earlier.what);
        // The same SA twice in the file is the file's fault; anything else
        // is the link finding no room or no live data plane in time.
        bool duplicate = future.error().find("already owned") != std::string::npos;
        return duplicate ? kExitRefused : kExitTimeout;
      }
      submitted.push_back({std::move(*future), std::move(what)});
    }
  }
  for (Submitted& one : submitted) {
    if (!report(one.future, one.what)) ++failures;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "installed " << submitted.size() - failures << " of " << submitted.size()
            << " SAs in " << seconds << " s\n";
  return failures == 0 ? kExitOk : kExitRefused;
}

int run_remove(const GlobalOptions& global, const std::vector<std::string>& arguments) {
  po::options_description options("remove options");
  options.add_options()
      ("help,h", "this help")
      ("spi", po::value<std::string>()->required(), "SPI, decimal or 0x hex")
      ("direction", po::value<std::string>()->required(), "in or out");
  int exit_code = kExitOk;
  auto values = parse_subcommand("remove", options, arguments, exit_code);
  if (!values) return exit_code;
  auto spi = segw::shared::parse_integer((*values)["spi"].as<std::string>());
  if (!spi || *spi == 0 || *spi > UINT32_MAX) {
    return usage_error("remove: --spi '" + (*values)["spi"].as<std::string>() +
                       "' is not an SPI (1 to 0xffffffff)");
  }
  auto direction = parse_direction((*values)["direction"].as<std::string>());
  if (!direction) {
    return usage_error("remove: --direction '" + (*values)["direction"].as<std::string>() +
                       "' must be in or out");
  }
  auto link = attach_link(global, exit_code);
  if (!link) return exit_code;
  auto future = link->remove(static_cast<uint32_t>(*spi), *direction);
  std::string what = "remove " + spi_text(uint32_t(*spi)) + " " + segw::shared::to_string(*direction);
  if (!future) {
    std::cerr << "segwctl-dp: " << what << ": " << future.error() << "\n";
    return kExitTimeout;
  }
  if (!report(*future, what)) return kExitRefused;
  std::cout << "removed " << spi_text(uint32_t(*spi)) << " " << segw::shared::to_string(*direction)
            << "\n";
  return kExitOk;
}

int run_move(const GlobalOptions& global, const std::vector<std::string>& arguments) {
  po::options_description options("move options");
  options.add_options()
      ("help,h", "this help")
      ("tunnel", po::value<uint32_t>()->required(), "tunnel id (dump shows them)")
      ("local", po::value<std::string>()->required(), "the gateway's access-side address")
      ("remote", po::value<std::string>()->required(),
       "the peer's public address, ADDR or ADDR:PORT ([ADDR]:PORT for IPv6); port default 4500")
      ("local-port", po::value<uint16_t>()->default_value(4500), "the gateway's UDP port")
      ("no-udp", "raw ESP: no UDP encapsulation");
  int exit_code = kExitOk;
  auto values = parse_subcommand("move", options, arguments, exit_code);
  if (!values) return exit_code;
  PathDescriptor path;
  auto local = IpAddress::parse((*values)["local"].as<std::string>());
  if (!local) return usage_error("move: --local '" + (*values)["local"].as<std::string>() + "' is not an address");
  path.local = *local;
  std::optional<uint16_t> remote_port;
  if (!parse_address_and_port((*values)["remote"].as<std::string>(), path.remote, remote_port)) {
    return usage_error("move: --remote '" + (*values)["remote"].as<std::string>() +
                       "' is not ADDR or ADDR:PORT");
  }
  if (path.local.family() != path.remote.family()) {
    return usage_error("move: --local and --remote must both be IPv4 or both IPv6");
  }
  path.remote_port = remote_port.value_or(4500);
  path.local_port = (*values)["local-port"].as<uint16_t>();
  path.udp_encapsulation = values->count("no-udp") == 0;
  if (path.udp_encapsulation && path.local_port == 0) return usage_error("move: --local-port 0");
  uint32_t tunnel = (*values)["tunnel"].as<uint32_t>();

  auto link = attach_link(global, exit_code);
  if (!link) return exit_code;
  std::string where = endpoint_text(path.local, path.local_port) + " -> " +
                      endpoint_text(path.remote, path.remote_port) +
                      (path.udp_encapsulation ? " (UDP)" : " (raw ESP)");
  std::string what = "move tunnel " + std::to_string(tunnel) + " to " + where;
  auto future = link->update_path(tunnel, path);
  if (!future) {
    std::cerr << "segwctl-dp: " << what << ": " << future.error() << "\n";
    return kExitTimeout;
  }
  if (!report(*future, what)) return kExitRefused;
  std::cout << "moved tunnel " << tunnel << " to " << where << "\n";
  return kExitOk;
}

int run_dump(const GlobalOptions& global, const std::vector<std::string>& arguments) {
  po::options_description options("dump options");
  options.add_options()("help,h", "this help");
  int exit_code = kExitOk;
  auto values = parse_subcommand("dump", options, arguments, exit_code);
  if (!values) return exit_code;
  auto observer = dp_link::RegionObserver::open(global.channel, global.directory);
  if (!observer) {
    std::cerr << "segwctl-dp: " << observer.error() << "\n";
    return kExitChannel;
  }
  channel::PeerStatus data_plane = observer->data_plane();
  channel::PeerStatus control_plane = observer->control_plane();
  std::cout << "region " << observer->path() << " layout " << observer->header().layout_version
            << "\n"
            << "data plane: pid " << data_plane.pid << ", generation " << data_plane.generation
            << (observer->data_plane_alive(std::chrono::seconds(1)) ? ", alive" : ", NOT alive")
            << "\n"
            << "control plane: generation " << control_plane.generation
            << (observer->control_plane_attached()
                    ? ", attached (pid " + std::to_string(control_plane.pid) + ")"
                    : std::string(", not attached"))
            << "\n";
  auto inventory = dp_link::read_sa_inventory(*observer);
  if (!inventory) {
    std::cerr << "segwctl-dp: " << inventory.error() << "\n";
    return kExitChannel;
  }
  auto counters = dp_link::describe_channel_counters(*observer);
  if (counters) std::cout << *counters << "\n";
  std::cout << inventory->size() << " SAs\n";
  for (const dp_link::InventoryEntry& sa : *inventory) {
    std::cout << dp_link::describe(sa) << "\n";
  }
  return kExitOk;
}

std::string event_text(const channel::Event& event) {
  std::string text = std::string(channel::to_string(event.kind));
  if (event.spi != 0) {
    text += " spi=" + spi_text(event.spi) + " " + segw::shared::to_string(event.direction) +
            " tunnel=" + std::to_string(event.tunnel_id);
  }
  switch (event.kind) {
    case channel::EventKind::kNewSourceAddress:
      text += " current=" + endpoint_text(event.current_remote.address, event.current_remote.port) +
              " new=" + endpoint_text(event.new_remote.address, event.new_remote.port);
      break;
    case channel::EventKind::kSoftLifetime:
    case channel::EventKind::kHardLifetime:
      text += " bytes=" + std::to_string(event.bytes) + " packets=" + std::to_string(event.packets);
      break;
    case channel::EventKind::kSequenceNearExhaustion:
      text += " sequence=" + std::to_string(event.sequence_number);
      break;
    case channel::EventKind::kSaIdle:
      text += " idle_ms=" + std::to_string(event.idle_ns / 1'000'000);
      break;
    case channel::EventKind::kError:
      text += std::string(" error=") + channel::to_string(event.error) +
              " detail=" + std::to_string(event.error_detail);
      break;
  }
  if (event.suppressed != 0) text += " suppressed=" + std::to_string(event.suppressed);
  return text;
}

int run_events(const GlobalOptions& global, const std::vector<std::string>& arguments) {
  po::options_description options("events options");
  options.add_options()
      ("help,h", "this help")
      ("count", po::value<uint64_t>()->default_value(0), "stop after N events (0: until interrupted)");
  int exit_code = kExitOk;
  auto values = parse_subcommand("events", options, arguments, exit_code);
  if (!values) return exit_code;
  uint64_t count = (*values)["count"].as<uint64_t>();
  auto link = attach_link(global, exit_code);
  if (!link) return exit_code;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::mutex mutex;
  uint64_t printed = 0;
  link->subscribe_all([&](const channel::Event& event) {
    std::lock_guard lock(mutex);
    if (count != 0 && printed >= count) return;
    std::cout << event_text(event) << std::endl;  // flushed: often piped into a test
    ++printed;
  });
  for (;;) {
    {
      std::lock_guard lock(mutex);
      if (count != 0 && printed >= count) break;
    }
    if (g_interrupted != 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return kExitOk;
}

int run_wait_ready(const GlobalOptions& global, const std::vector<std::string>& arguments) {
  po::options_description options("wait-ready options");
  options.add_options()
      ("help,h", "this help")
      ("wait", po::value<unsigned>(), "how long to wait, ms (default: --timeout)");
  int exit_code = kExitOk;
  auto values = parse_subcommand("wait-ready", options, arguments, exit_code);
  if (!values) return exit_code;
  unsigned wait_ms = values->count("wait") != 0 ? (*values)["wait"].as<unsigned>() : global.timeout_ms;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  std::string reason;
  for (;;) {
    auto observer = dp_link::RegionObserver::open(global.channel, global.directory);
    if (observer && observer->data_plane_alive(std::chrono::seconds(1))) {
      std::cout << "ready: " << observer->path() << " (data plane pid " << observer->data_plane().pid
                << ")\n";
      return kExitOk;
    }
    if (!observer && observer.error() != dp_link::no_region_message(global.channel, global.directory)) {
      // A region is there but unusable (another build, not a region): a
      // data plane publishes complete regions only, so waiting cannot help.
      std::cerr << "segwctl-dp: " << observer.error() << "\n";
      return kExitChannel;
    }
    reason = observer ? observer->path() + ": data plane heartbeat not live" : observer.error();
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::cerr << "segwctl-dp: not ready after " << wait_ms << " ms: " << reason << "\n";
  return kExitTimeout;
}

void print_help(const po::options_description& global) {
  std::cout << "usage: segwctl-dp [global options] COMMAND [command options]\n\n"
               "Drives a running segw-dataplane through its shared-memory channel.\n\n"
            << global << "\n"
            << kCommandHelp << "\n"
            << kExitCodeHelp;
}

}  // namespace

int main(int argc, char** argv) {
  GlobalOptions global;
  po::options_description visible("Global options");
  visible.add_options()
      ("help,h", "this help")
      ("channel", po::value<std::string>(&global.channel)->default_value("segw"),
       "region name (segw-dataplane's [channel] name)")
      ("directory", po::value<std::string>(&global.directory),
       "look for the region here instead of /dev/hugepages then /dev/shm")
      ("timeout", po::value<unsigned>(&global.timeout_ms)->default_value(5000),
       "ms to wait for room, for each completion, and for a live data plane");
  po::options_description hidden;
  hidden.add_options()
      ("command", po::value<std::string>())
      ("arguments", po::value<std::vector<std::string>>());
  po::options_description all;
  all.add(visible).add(hidden);
  po::positional_options_description positional;
  positional.add("command", 1).add("arguments", -1);

  po::variables_map values;
  std::vector<std::string> arguments;
  try {
    po::parsed_options parsed = po::command_line_parser(argc, argv)
                                    .options(all)
                                    .positional(positional)
                                    .allow_unregistered()
                                    .run();
    po::store(parsed, values);
    po::notify(values);
    // What follows the command name belongs to the command: global options
    // go before it.
    arguments = po::collect_unrecognized(parsed.options, po::include_positional);
    if (values.count("command") != 0) {
      auto name = std::find(arguments.begin(), arguments.end(), values["command"].as<std::string>());
      if (name != arguments.end()) arguments.erase(name);
    }
  } catch (const po::error& error) {
    return usage_error(error.what());
  }
  if (values.count("command") == 0) {
    if (values.count("help") != 0) {
      print_help(visible);
      return kExitOk;
    }
    return usage_error("no command given");
  }
  if (global.channel.empty()) return usage_error("--channel must not be empty");
  std::string command = values["command"].as<std::string>();
  // `segwctl-dp install --help`: the option parser above took --help as
  // global; give it to the command.
  if (values.count("help") != 0) arguments.push_back("--help");
  try {
    if (command == "install") return run_install(global, arguments);
    if (command == "remove") return run_remove(global, arguments);
    if (command == "move") return run_move(global, arguments);
    if (command == "dump") return run_dump(global, arguments);
    if (command == "events") return run_events(global, arguments);
    if (command == "wait-ready") return run_wait_ready(global, arguments);
    if (command == "help") {
      print_help(visible);
      return kExitOk;
    }
  } catch (const std::exception& error) {
    // Boost.Program_options conversions (as<T>) are the only throwers here.
    std::cerr << "segwctl-dp: " << command << ": " << error.what() << "\n";
    return kExitUsage;
  }
  return usage_error("unknown command '" + command + "'");
}
