// Links against the installed library and checks a pinned number.
#include <cstdio>

#include "skd/models/macs.h"

int main() {
  const auto cost = skd::models::macs_count(skd::models::named_config("deit_small"));
  std::printf("deit_small MACs (paper) %lld\n", static_cast<long long>(cost.macs_paper));
  return cost.macs_paper == 4256878312 ? 0 : 1;
}
