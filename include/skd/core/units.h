// Option values with units, parsed at the edge: a flag or a config value is text ("1,8,64", "5ms",
// "2.43G") that becomes a typed value when the command line or the file is read, so the library only
// ever sees numbers. Each type is a text value of skd/core/options.h:
//
//   static T from_text(const std::string&)   std::invalid_argument with a message (no key: the option
//                                             layer adds the flag, or the file and the key)
//   std::string to_text() const               text that from_text reads back to the same value
//
// Their JSON form is that text; a JSON number is read as its decimal text (a MACs count, milliseconds,
// a one-element batch list). Torch-free (compiled into skd_io, like core/fs.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace skd {

// The shortest %g text of `v` that reads back to exactly `v` ("0.875", "0.44819", "1e-05").
std::string shortest_text(double v);

// Batch sizes "1,8,64" (spaces around items allowed): at least one, every one a positive decimal integer.
struct BatchList {
  std::vector<int64_t> values;

  static BatchList from_text(const std::string& text);
  std::string to_text() const;  // "1,8,64"
  bool operator==(const BatchList& o) const { return values == o.values; }
};

// A positive duration: "5ms", "2.5 ms", "800us", "0.5s", or a plain number of milliseconds ("12").
struct Duration {
  double ms = 0;

  static Duration from_text(const std::string& text);
  std::string to_text() const;  // "<ms>ms", exact (the shortest text that reads back to ms)
  bool operator==(const Duration& o) const { return ms == o.ms; }
};

// A positive MACs amount: "2.43G", "2.43GMac", "897M", "897.0 MMac", "4GMACs", "1.5e9", "123456"
// (units k, M, G, T, any case; at most 9.2e18).
struct Macs {
  int64_t count = 0;

  static Macs from_text(const std::string& text);
  std::string to_text() const;  // the plain count: "2430000000"
  bool operator==(const Macs& o) const { return count == o.count; }
};

// A fraction of the full network's MACs in (0, 1]: a decimal ("0.333", "1"), "n/d", or the paper's
// "n:12" notation (= n/12). The text is kept as given, so a dumped config and a provenance say "4:12".
struct MacsRatio {
  double value = 1;
  std::string text = "1";

  static MacsRatio from_text(const std::string& text);
  std::string to_text() const { return text; }
  bool operator==(const MacsRatio& o) const { return value == o.value; }
};

// Per-channel values "0.485,0.456,0.406" (a normalization's mean or std): at least one finite decimal
// number, separated by commas (spaces around items allowed).
struct ChannelValues {
  std::vector<double> values;

  static ChannelValues from_text(const std::string& text);
  std::string to_text() const;  // "0.485,0.456,0.406", each the shortest text that reads back exactly
  bool operator==(const ChannelValues& o) const { return values == o.values; }
};

}  // namespace skd
