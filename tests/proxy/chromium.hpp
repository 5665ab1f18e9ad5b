#pragma once
// Drives headless Chromium from a test: load a URL and dump the DOM after the page's scripts
// ran, or save a screenshot. Each run gets a fresh profile directory, so tests running at the
// same time do not fight over a profile lock. Blocking (see subprocess.hpp): a test whose server
// runs on a runtime calls these through spawn_blocking.
//
// --virtual-time-budget makes Chromium run the page on a virtual clock: timers fire as fast as
// the page lets them, and the clock stands still while a network request is in flight, so
// "budget 5000" means "what the page shows 5 s after loading" without waiting 5 s, and a page
// that refreshes every 2 s refreshes twice.

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/proxy/subprocess.hpp"

namespace lbd::test {

/// The Chromium binary ("chromium" on Debian, "chromium-browser" or "google-chrome" elsewhere);
/// empty when none is installed.
inline std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    std::string p = find_program(name);
    if (!p.empty()) return p;
  }
  return {};
}

/// A fresh directory removed on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "lbd-chromium-XXXXXX").string();
    if (char* p = ::mkdtemp(tmpl.data())) path_ = p;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// The flags every run takes. --no-sandbox: tests may run as root or in a container without
/// user namespaces, where Chromium's sandbox cannot start.
inline std::vector<std::string> chromium_args(const std::string& binary, const ScratchDir& profile) {
  return {binary,
          "--headless=new",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-dev-shm-usage",
          "--no-first-run",
          "--no-default-browser-check",
          "--disable-extensions",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--metrics-recording-only",
          "--user-data-dir=" + profile.path()};
}

/// Loads `url` in a fresh profile with `flags` after the common ones, after `virtual_time_ms`
/// of virtual time (see above). Fails (result.ok() false) when Chromium is missing, crashes or
/// hangs past `limit`.
inline CommandResult run_chromium(const std::string& url, std::vector<std::string> flags, int virtual_time_ms,
                                  std::chrono::milliseconds limit) {
  std::string binary = find_chromium();
  if (binary.empty()) return CommandResult{false, false, -1, "", "chromium is not installed"};
  ScratchDir profile;
  std::vector<std::string> args = chromium_args(binary, profile);
  args.push_back("--virtual-time-budget=" + std::to_string(virtual_time_ms));
  args.insert(args.end(), flags.begin(), flags.end());
  args.push_back(url);
  return run_command(args, {}, limit);
}

/// Loads `url` and returns the DOM as serialized after `virtual_time_ms` of virtual time.
inline CommandResult chromium_dump_dom(const std::string& url, int virtual_time_ms = 5000,
                                       std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  return run_chromium(url, {"--dump-dom"}, virtual_time_ms, limit);
}

/// Saves a PNG of `url` as rendered in a `width` x `height` window to `png_path`.
inline CommandResult chromium_screenshot(const std::string& url, const std::string& png_path, int width = 1200,
                                         int height = 800, int virtual_time_ms = 5000,
                                         std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  return run_chromium(url,
                      {"--hide-scrollbars", "--window-size=" + std::to_string(width) + "," + std::to_string(height),
                       "--screenshot=" + png_path},
                      virtual_time_ms, limit);
}

}  // namespace lbd::test
