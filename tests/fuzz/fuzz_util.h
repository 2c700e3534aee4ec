// Shared by the fuzz targets: runs one input and treats the error types a parser documents for bad
// input as the expected outcome. Any other exception escaping is a finding: it is printed and the
// process aborts, so libFuzzer saves the input as a crash.
#pragma once

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <typeinfo>

namespace skd::fuzz {

[[noreturn]] inline void finding(const char* target, const char* what) {
  std::fprintf(stderr, "FUZZ FINDING in %s: %s\n", target, what);
  std::abort();
}

[[noreturn]] inline void unexpected_exception(const char* target, const std::type_info* type,
                                              const char* what) {
  int status = 0;
  char* name = type ? abi::__cxa_demangle(type->name(), nullptr, nullptr, &status) : nullptr;
  std::fprintf(stderr, "FUZZ FINDING in %s: unexpected exception %s: %s\n", target,
               name ? name : (type ? type->name() : "(unknown type)"), what);
  std::free(name);
  std::abort();
}

// Runs `body`; exceptions derived from one of `Expected` are the documented outcome for bad input.
template <typename... Expected, typename Body>
void run_expecting(const char* target, Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    if ((... || (dynamic_cast<const Expected*>(&e) != nullptr))) return;
    unexpected_exception(target, &typeid(e), e.what());
  } catch (...) {
    unexpected_exception(target, abi::__cxa_current_exception_type(), "(not a std::exception)");
  }
}

}  // namespace skd::fuzz
