// timm/DeiT image-side training augmentations with Pillow 9.4 numerics (see augment.h).
#include "skd/data/augment.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>

#include "skd/core/error.h"

// Pixel-exactness notes (each checked against Pillow by tests/data/augment_test.cpp goldens):
//  * affine sampling follows libImaging/Geometry.c: pixel centres at +0.5, a sample point outside
//    [0, size) keeps the fill colour, edge taps are clamped (rows below the image repeat the last
//    row read), results are truncated, bicubic uses PIL's a = -1 cubic;
//  * blends (ImageEnhance) are computed in float as libImaging/Blend.c, truncated and clipped;
//  * the rotation matrix entries are rounded to 15 decimals as Image.rotate does.
// Expressions keep Pillow's evaluation order so that doubles/floats round identically.

namespace skd::data {

namespace {
constexpr double kPi = 3.14159265358979323846;  // CPython's Py_MATH_PI
}  // namespace

// ---------------------------------------------------------------------------------------------
// Random draws

double rng_uniform01(Rng& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

double rng_uniform(Rng& rng, double lo, double hi) {
  return lo + (hi - lo) * rng_uniform01(rng);
}

int64_t rng_int(Rng& rng, int64_t lo, int64_t hi) {
  if (hi < lo) throw std::invalid_argument(cat("rng_int: empty range [", lo, ", ", hi, "]"));
  const uint64_t n = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo) + 1;  // 0: full range
  if (n == 0) return static_cast<int64_t>(rng());
  // Rejection on the smallest covering power of two: exactly uniform, as Python's _randbelow.
  int bits = 0;
  while (bits < 64 && (n - 1) >> bits) ++bits;
  for (;;) {
    const uint64_t r = bits == 0 ? 0 : rng() >> (64 - bits);
    if (r < n) return static_cast<int64_t>(static_cast<uint64_t>(lo) + r);
  }
}

double rng_normal(Rng& rng, double mean, double std) {
  const double u1 = 1.0 - rng_uniform01(rng);  // (0, 1]: log is finite
  const double u2 = rng_uniform01(rng);
  return mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

double rng_beta(Rng& rng, double a, double b) {
  if (!(a > 0) || !(b > 0))
    throw std::invalid_argument(cat("rng_beta: alpha and beta must be > 0, got ", a, ", ", b));
  const double x = std::gamma_distribution<double>(a, 1.0)(rng);
  const double y = std::gamma_distribution<double>(b, 1.0)(rng);
  // Both gammas underflow to 0 only for tiny shape parameters; Beta then concentrates on {0, 1}.
  if (x + y == 0.0) return rng_uniform01(rng) * (a + b) < a ? 1.0 : 0.0;
  return x / (x + y);
}

namespace {

void check_image(const Image& img, const char* fn) {
  if (img.width <= 0 || img.height <= 0)
    throw std::invalid_argument(cat(fn, ": empty image (", img.width, "x", img.height, ")"));
  if (img.channels != 1 && img.channels != 3)
    throw std::invalid_argument(cat(fn, ": expected 1 or 3 channels, got ", img.channels));
  const size_t want = static_cast<size_t>(img.width) * img.height * img.channels;
  if (img.pixels.size() != want)
    throw std::invalid_argument(cat(fn, ": pixel buffer has ", img.pixels.size(), " bytes, expected ", want,
                                    " for ", img.width, "x", img.height, "x", img.channels));
}

Image blank_like(const Image& img) {
  Image out;
  out.width = img.width;
  out.height = img.height;
  out.channels = img.channels;
  out.pixels.resize(img.pixels.size());
  return out;
}

// Applies one 256-entry table per channel (PIL's point/_lut).
Image apply_lut(const Image& img, const std::vector<std::array<uint8_t, 256>>& luts) {
  Image out = blank_like(img);
  const size_t n = img.pixels.size();
  const int c = img.channels;
  for (size_t i = 0; i < n; i += c)
    for (int b = 0; b < c; ++b) out.pixels[i + b] = luts[b][img.pixels[i + b]];
  return out;
}

Image apply_lut(const Image& img, const std::array<uint8_t, 256>& lut) {
  return apply_lut(img, std::vector<std::array<uint8_t, 256>>(img.channels, lut));
}

std::vector<std::array<int64_t, 256>> histograms(const Image& img) {
  std::vector<std::array<int64_t, 256>> h(img.channels);
  for (auto& hc : h) hc.fill(0);
  const int c = img.channels;
  for (size_t i = 0; i < img.pixels.size(); i += c)
    for (int b = 0; b < c; ++b) ++h[b][img.pixels[i + b]];
  return h;
}

// Image.blend(degenerate, img, alpha) as libImaging/Blend.c: float arithmetic, truncation.
Image blend(const Image& degenerate, const Image& img, double factor) {
  const float alpha = static_cast<float>(factor);  // Pillow parses alpha as a C float
  if (alpha == 0.0f) return degenerate;
  if (alpha == 1.0f) return img;
  Image out = blank_like(img);
  const size_t n = img.pixels.size();
  if (alpha >= 0.0f && alpha <= 1.0f) {
    for (size_t i = 0; i < n; ++i) {
      const int a = degenerate.pixels[i], b = img.pixels[i];
      out.pixels[i] = static_cast<uint8_t>(static_cast<float>(a) + alpha * static_cast<float>(b - a));
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      const int a = degenerate.pixels[i], b = img.pixels[i];
      const float t = static_cast<float>(a) + alpha * static_cast<float>(b - a);
      out.pixels[i] = t <= 0.0f ? 0 : t >= 255.0f ? 255 : static_cast<uint8_t>(t);
    }
  }
  return out;
}

// Gray image expanded back to img's channel count (PIL's convert("L").convert(mode)).
Image gray_as(const Image& gray, int channels) {
  if (channels == 1) return gray;
  Image out;
  out.width = gray.width;
  out.height = gray.height;
  out.channels = channels;
  out.pixels.resize(gray.pixels.size() * channels);
  for (size_t i = 0; i < gray.pixels.size(); ++i)
    for (int k = 0; k < channels; ++k) out.pixels[i * channels + k] = gray.pixels[i];
  return out;
}

// ImageFilter.SMOOTH: 3x3 kernel [1 1 1; 1 5 1; 1 1 1] / 13 in float, +0.5 rounding, border
// pixels copied (libImaging/Filter.c). Images smaller than the kernel are returned unchanged.
Image smooth(const Image& img) {
  if (img.width < 3 || img.height < 3) return img;
  const float k1 = 1.0f / 13.0f, k5 = 5.0f / 13.0f;
  const float k[9] = {k1, k1, k1, k1, k5, k1, k1, k1, k1};
  Image out = img;
  const int c = img.channels;
  for (int y = 1; y < img.height - 1; ++y) {
    const uint8_t* up = img.row(y - 1);
    const uint8_t* mid = img.row(y);
    const uint8_t* down = img.row(y + 1);
    uint8_t* o = out.row(y);
    for (int x = 1; x < img.width - 1; ++x) {
      for (int b = 0; b < c; ++b) {
        const int i = x * c + b;
        auto row3 = [&](const uint8_t* r, const float* kk) {
          return static_cast<float>(r[i - c]) * kk[0] + static_cast<float>(r[i]) * kk[1] +
                 static_cast<float>(r[i + c]) * kk[2];
        };
        float ss = 0.5f;  // Pillow adds the rounding half to the offset first
        ss += row3(down, &k[0]);
        ss += row3(mid, &k[3]);
        ss += row3(up, &k[6]);
        ss = ss < 0.0f ? 0.0f : ss;
        ss = ss > 255.0f ? 255.0f : ss;
        o[i] = static_cast<uint8_t>(ss);
      }
    }
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// RandomResizedCrop and flip

CropBox random_resized_crop_params(int width, int height, const RandomResizedCrop& cfg, Rng& rng) {
  if (width <= 0 || height <= 0)
    throw std::invalid_argument(cat("random_resized_crop: empty image (", width, "x", height, ")"));
  if (!(cfg.scale[0] > 0) || !(cfg.scale[0] <= cfg.scale[1]))
    throw std::invalid_argument(cat("random_resized_crop: scale must satisfy 0 < min <= max, got (",
                                    cfg.scale[0], ", ", cfg.scale[1], ")"));
  if (!(cfg.ratio[0] > 0) || !(cfg.ratio[0] <= cfg.ratio[1]))
    throw std::invalid_argument(cat("random_resized_crop: ratio must satisfy 0 < min <= max, got (",
                                    cfg.ratio[0], ", ", cfg.ratio[1], ")"));
  const double area = static_cast<double>(width) * height;
  const double log_lo = std::log(cfg.ratio[0]), log_hi = std::log(cfg.ratio[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = rng_uniform(rng, cfg.scale[0], cfg.scale[1]) * area;
    const double aspect = std::exp(rng_uniform(rng, log_lo, log_hi));
    // Python's round(): half to even, which nearbyint does in the default rounding mode.
    const double w = std::nearbyint(std::sqrt(target_area * aspect));
    const double h = std::nearbyint(std::sqrt(target_area / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      CropBox b;
      b.width = static_cast<int>(w);
      b.height = static_cast<int>(h);
      b.top = static_cast<int>(rng_int(rng, 0, height - b.height));
      b.left = static_cast<int>(rng_int(rng, 0, width - b.width));
      return b;
    }
  }
  CropBox b;
  const double in_ratio = static_cast<double>(width) / height;
  if (in_ratio < cfg.ratio[0]) {
    b.width = width;
    b.height = static_cast<int>(std::nearbyint(width / cfg.ratio[0]));
  } else if (in_ratio > cfg.ratio[1]) {
    b.height = height;
    b.width = static_cast<int>(std::nearbyint(height * cfg.ratio[1]));
  } else {
    b.width = width;
    b.height = height;
  }
  // Extreme ratio ranges could round to 0 or beyond the image; keep the crop valid.
  b.width = std::clamp(b.width, 1, width);
  b.height = std::clamp(b.height, 1, height);
  b.top = (height - b.height) / 2;
  b.left = (width - b.width) / 2;
  return b;
}

Image crop(const Image& img, const CropBox& box) {
  check_image(img, "crop");
  if (box.width <= 0 || box.height <= 0 || box.left < 0 || box.top < 0 || box.left + box.width > img.width ||
      box.top + box.height > img.height)
    throw std::invalid_argument(cat("crop: box (top ", box.top, ", left ", box.left, ", ", box.width, "x",
                                    box.height, ") is not inside the ", img.width, "x", img.height,
                                    " image"));
  Image out;
  out.width = box.width;
  out.height = box.height;
  out.channels = img.channels;
  out.pixels.resize(static_cast<size_t>(box.width) * box.height * img.channels);
  const size_t row_bytes = static_cast<size_t>(box.width) * img.channels;
  for (int y = 0; y < box.height; ++y)
    std::copy_n(img.row(box.top + y) + static_cast<size_t>(box.left) * img.channels, row_bytes, out.row(y));
  return out;
}

Image random_resized_crop(const Image& img, const RandomResizedCrop& cfg, Rng& rng) {
  check_image(img, "random_resized_crop");
  if (cfg.size <= 0)
    throw std::invalid_argument(cat("random_resized_crop: size must be > 0, got ", cfg.size));
  const CropBox box = random_resized_crop_params(img.width, img.height, cfg, rng);
  return resize_pil(crop(img, box), cfg.size, cfg.size, cfg.filter);
}

Image flip_horizontal(const Image& img) {
  check_image(img, "flip_horizontal");
  Image out = blank_like(img);
  const int c = img.channels;
  for (int y = 0; y < img.height; ++y) {
    const uint8_t* in = img.row(y);
    uint8_t* o = out.row(y);
    for (int x = 0; x < img.width; ++x)
      std::copy_n(in + static_cast<size_t>(img.width - 1 - x) * c, c, o + static_cast<size_t>(x) * c);
  }
  return out;
}

bool random_flip_horizontal(Image& img, double p, Rng& rng) {
  if (!(rng_uniform01(rng) < p)) return false;  // torchvision: flip if torch.rand(1) < p
  img = flip_horizontal(img);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Geometric ops

namespace {

// The first FLOOR of Geometry.c: truncation, but floor for negatives.
inline int pil_floor(double v) {
  return v < 0.0 ? static_cast<int>(std::floor(v)) : static_cast<int>(v);
}

inline double cubic(double v1, double v2, double v3, double v4, double d) {
  const double p1 = v2;
  const double p2 = -v1 + v3;
  const double p3 = 2 * (v1 - v2) + v3 - v4;
  const double p4 = -v1 + v2 - v3 + v4;
  return p1 + d * (p2 + d * (p3 + d * p4));
}

// Both samplers write all bands of img at (xin, yin), already shifted to pixel-centre coordinates
// by -0.5, to o. Taps left/right of the image are clamped; the first row is clamped and rows
// below the image repeat the previous one, as PIL does.
void sample_bilinear(const Image& img, double xin, double yin, uint8_t* o) {
  const int x = pil_floor(xin), y = pil_floor(yin);
  const double dx = xin - x, dy = yin - y;
  const int c = img.channels, w = img.width, h = img.height;
  const int x0 = std::clamp(x, 0, w - 1) * c, x1 = std::clamp(x + 1, 0, w - 1) * c;
  const uint8_t* r0 = img.row(std::clamp(y, 0, h - 1));
  const uint8_t* r1 = y + 1 >= 0 && y + 1 < h ? img.row(y + 1) : r0;
  for (int b = 0; b < c; ++b) {
    const double v1 = r0[x0 + b] + (r0[x1 + b] - r0[x0 + b]) * dx;
    const double v2 = r1[x0 + b] + (r1[x1 + b] - r1[x0 + b]) * dx;
    o[b] = static_cast<uint8_t>(v1 + (v2 - v1) * dy);
  }
}

void sample_bicubic(const Image& img, double xin, double yin, uint8_t* o) {
  const int fx = pil_floor(xin), fy = pil_floor(yin);
  const double dx = xin - fx, dy = yin - fy;
  const int c = img.channels, w = img.width, h = img.height;
  int xs[4];
  const uint8_t* rows[4];
  for (int k = 0; k < 4; ++k) xs[k] = std::clamp(fx - 1 + k, 0, w - 1) * c;
  rows[0] = img.row(std::clamp(fy - 1, 0, h - 1));
  for (int k = 1; k < 4; ++k) rows[k] = fy - 1 + k >= 0 && fy - 1 + k < h ? img.row(fy - 1 + k) : rows[k - 1];
  for (int b = 0; b < c; ++b) {
    // Integer-valued operands make PIL's int and double arithmetic coincide exactly.
    double v[4];
    for (int k = 0; k < 4; ++k)
      v[k] = cubic(rows[k][xs[0] + b], rows[k][xs[1] + b], rows[k][xs[2] + b], rows[k][xs[3] + b], dx);
    const double r = cubic(v[0], v[1], v[2], v[3], dy);
    o[b] = r <= 0.0 ? 0 : r >= 255.0 ? 255 : static_cast<uint8_t>(r);
  }
}

}  // namespace

Image affine_transform(const Image& img, const std::array<double, 6>& a, Filter filter, const Fill& fill) {
  check_image(img, "affine_transform");
  if (filter != Filter::BILINEAR && filter != Filter::BICUBIC)
    throw std::invalid_argument("affine_transform: resample must be BILINEAR or BICUBIC");
  Image out = blank_like(img);
  const int c = img.channels;
  const double w = img.width, h = img.height;
  for (int y = 0; y < img.height; ++y) {
    uint8_t* o = out.row(y);
    for (int x = 0; x < img.width; ++x, o += c) {
      const double xc = x + 0.5, yc = y + 0.5;
      const double xin = a[0] * xc + a[1] * yc + a[2];
      const double yin = a[3] * xc + a[4] * yc + a[5];
      if (xin < 0.0 || xin >= w || yin < 0.0 || yin >= h) {
        for (int b = 0; b < c; ++b) o[b] = fill[b];
        continue;
      }
      if (filter == Filter::BILINEAR)
        sample_bilinear(img, xin - 0.5, yin - 0.5, o);
      else
        sample_bicubic(img, xin - 0.5, yin - 0.5, o);
    }
  }
  return out;
}

namespace {

// Python's round(v, 15): correctly rounded through the decimal string, as CPython does.
double round15(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15f", v);
  return std::strtod(buf, nullptr);
}

// Image.transpose(ROTATE_90 / ROTATE_180 / ROTATE_270): exact pixel moves.
Image rotate_quarter(const Image& img, int quarters) {
  const int w = img.width, h = img.height, c = img.channels;
  Image out = blank_like(img);
  if (quarters % 2 == 1) std::swap(out.width, out.height);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      int ox = 0, oy = 0;
      if (quarters == 1) {  // counter-clockwise
        ox = y;
        oy = w - 1 - x;
      } else if (quarters == 2) {
        ox = w - 1 - x;
        oy = h - 1 - y;
      } else {
        ox = h - 1 - y;
        oy = x;
      }
      std::copy_n(img.row(y) + static_cast<size_t>(x) * c, c, out.row(oy) + static_cast<size_t>(ox) * c);
    }
  }
  return out;
}

}  // namespace

Image rotate(const Image& img, double degrees, Filter filter, const Fill& fill) {
  check_image(img, "rotate");
  if (filter != Filter::BILINEAR && filter != Filter::BICUBIC)
    throw std::invalid_argument("rotate: resample must be BILINEAR or BICUBIC");
  if (!std::isfinite(degrees))
    throw std::invalid_argument(cat("rotate: angle must be finite, got ", degrees));
  // Python's float modulo: the result takes the divisor's sign.
  double angle = std::fmod(degrees, 360.0);
  if (angle < 0) angle += 360.0;
  if (angle == 0.0) return img;
  if (angle == 180.0) return rotate_quarter(img, 2);
  if ((angle == 90.0 || angle == 270.0) && img.width == img.height)
    return rotate_quarter(img, angle == 90.0 ? 1 : 3);
  const double cx = img.width / 2.0, cy = img.height / 2.0;
  const double t = -(angle * (kPi / 180.0));  // math.radians multiplies by pi/180
  std::array<double, 6> m = {round15(std::cos(t)),  round15(std::sin(t)), 0.0,
                             round15(-std::sin(t)), round15(std::cos(t)), 0.0};
  // The centre is mapped with the linear part, then added back (Image.rotate's order).
  m[2] = m[0] * -cx + m[1] * -cy + m[2];
  m[5] = m[3] * -cx + m[4] * -cy + m[5];
  m[2] += cx;
  m[5] += cy;
  return affine_transform(img, m, filter, fill);
}

Image shear_x(const Image& img, double factor, Filter filter, const Fill& fill) {
  return affine_transform(img, {1, factor, 0, 0, 1, 0}, filter, fill);
}

Image shear_y(const Image& img, double factor, Filter filter, const Fill& fill) {
  return affine_transform(img, {1, 0, 0, factor, 1, 0}, filter, fill);
}

Image translate_x(const Image& img, double pixels, Filter filter, const Fill& fill) {
  return affine_transform(img, {1, 0, pixels, 0, 1, 0}, filter, fill);
}

Image translate_y(const Image& img, double pixels, Filter filter, const Fill& fill) {
  return affine_transform(img, {1, 0, 0, 0, 1, pixels}, filter, fill);
}

// ---------------------------------------------------------------------------------------------
// ImageEnhance

Image to_gray(const Image& img) {
  check_image(img, "to_gray");
  if (img.channels == 1) return img;
  Image out;
  out.width = img.width;
  out.height = img.height;
  out.channels = 1;
  const size_t n = static_cast<size_t>(img.width) * img.height;
  out.pixels.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = &img.pixels[i * 3];
    out.pixels[i] = static_cast<uint8_t>((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
  }
  return out;
}

Image enhance_color(const Image& img, double factor) {
  check_image(img, "enhance_color");
  return blend(gray_as(to_gray(img), img.channels), img, factor);
}

Image enhance_contrast(const Image& img, double factor) {
  check_image(img, "enhance_contrast");
  const Image gray = to_gray(img);
  double sum = 0.0;  // ImageStat's mean: sum of level * count over the histogram, in double
  const auto h = histograms(gray)[0];
  for (int i = 0; i < 256; ++i) sum += static_cast<double>(i) * static_cast<double>(h[i]);
  const int mean = static_cast<int>(sum / static_cast<double>(gray.pixels.size()) + 0.5);
  Image degenerate = blank_like(img);
  std::fill(degenerate.pixels.begin(), degenerate.pixels.end(), static_cast<uint8_t>(mean));
  return blend(degenerate, img, factor);
}

Image enhance_brightness(const Image& img, double factor) {
  check_image(img, "enhance_brightness");
  Image black = blank_like(img);
  std::fill(black.pixels.begin(), black.pixels.end(), uint8_t{0});
  return blend(black, img, factor);
}

Image enhance_sharpness(const Image& img, double factor) {
  check_image(img, "enhance_sharpness");
  return blend(smooth(img), img, factor);
}

// ---------------------------------------------------------------------------------------------
// ImageOps

Image auto_contrast(const Image& img) {
  check_image(img, "auto_contrast");
  const auto hist = histograms(img);
  std::vector<std::array<uint8_t, 256>> luts(img.channels);
  for (int ch = 0; ch < img.channels; ++ch) {
    const auto& h = hist[ch];
    int lo = 0, hi = 255;
    while (lo < 256 && !h[lo]) ++lo;
    while (hi >= 0 && !h[hi]) --hi;
    if (hi <= lo) {
      for (int i = 0; i < 256; ++i) luts[ch][i] = static_cast<uint8_t>(i);
      continue;
    }
    const double scale = 255.0 / (hi - lo);
    const double offset = -lo * scale;
    for (int i = 0; i < 256; ++i) {
      const int v = static_cast<int>(i * scale + offset);  // int() truncates toward zero
      luts[ch][i] = static_cast<uint8_t>(std::clamp(v, 0, 255));
    }
  }
  return apply_lut(img, luts);
}

Image equalize(const Image& img) {
  check_image(img, "equalize");
  const auto hist = histograms(img);
  std::vector<std::array<uint8_t, 256>> luts(img.channels);
  for (int ch = 0; ch < img.channels; ++ch) {
    const auto& h = hist[ch];
    for (int i = 0; i < 256; ++i) luts[ch][i] = static_cast<uint8_t>(i);
    int64_t total = 0, last = 0, nonzero = 0;
    for (int i = 0; i < 256; ++i) {
      if (!h[i]) continue;
      total += h[i];
      last = h[i];
      ++nonzero;
    }
    if (nonzero <= 1) continue;
    const int64_t step = (total - last) / 255;  // the last occupied level does not count
    if (step == 0) continue;
    int64_t n = step / 2;
    for (int i = 0; i < 256; ++i) {
      luts[ch][i] = static_cast<uint8_t>(std::min<int64_t>(n / step, 255));
      n += h[i];
    }
  }
  return apply_lut(img, luts);
}

Image invert(const Image& img) {
  check_image(img, "invert");
  std::array<uint8_t, 256> lut;
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(255 - i);
  return apply_lut(img, lut);
}

Image posterize(const Image& img, int bits) {
  check_image(img, "posterize");
  if (bits < 0 || bits > 8) throw std::invalid_argument(cat("posterize: bits must be in 0..8, got ", bits));
  if (bits == 8) return img;
  const int mask = ~((1 << (8 - bits)) - 1);
  std::array<uint8_t, 256> lut;
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(i & mask);
  return apply_lut(img, lut);
}

Image solarize(const Image& img, int threshold) {
  check_image(img, "solarize");
  std::array<uint8_t, 256> lut;
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(i < threshold ? i : 255 - i);
  return apply_lut(img, lut);
}

Image solarize_add(const Image& img, int add, int threshold) {
  check_image(img, "solarize_add");
  std::array<uint8_t, 256> lut;
  for (int i = 0; i < 256; ++i)
    lut[i] = static_cast<uint8_t>(i < threshold ? std::clamp(i + add, 0, 255) : i);
  return apply_lut(img, lut);
}

// ---------------------------------------------------------------------------------------------
// RandAugment

const char* augment_op_name(AugmentOp op) {
  switch (op) {
    case AugmentOp::AUTO_CONTRAST:
      return "AutoContrast";
    case AugmentOp::EQUALIZE:
      return "Equalize";
    case AugmentOp::INVERT:
      return "Invert";
    case AugmentOp::ROTATE:
      return "Rotate";
    case AugmentOp::POSTERIZE:
      return "Posterize";
    case AugmentOp::POSTERIZE_INCREASING:
      return "PosterizeIncreasing";
    case AugmentOp::SOLARIZE:
      return "Solarize";
    case AugmentOp::SOLARIZE_INCREASING:
      return "SolarizeIncreasing";
    case AugmentOp::SOLARIZE_ADD:
      return "SolarizeAdd";
    case AugmentOp::COLOR:
      return "Color";
    case AugmentOp::COLOR_INCREASING:
      return "ColorIncreasing";
    case AugmentOp::CONTRAST:
      return "Contrast";
    case AugmentOp::CONTRAST_INCREASING:
      return "ContrastIncreasing";
    case AugmentOp::BRIGHTNESS:
      return "Brightness";
    case AugmentOp::BRIGHTNESS_INCREASING:
      return "BrightnessIncreasing";
    case AugmentOp::SHARPNESS:
      return "Sharpness";
    case AugmentOp::SHARPNESS_INCREASING:
      return "SharpnessIncreasing";
    case AugmentOp::SHEAR_X:
      return "ShearX";
    case AugmentOp::SHEAR_Y:
      return "ShearY";
    case AugmentOp::TRANSLATE_X_REL:
      return "TranslateXRel";
    case AugmentOp::TRANSLATE_Y_REL:
      return "TranslateYRel";
  }
  return "?";
}

const std::vector<AugmentOp>& rand_augment_ops(bool increasing) {
  using A = AugmentOp;
  // clang-format off
  static const std::vector<AugmentOp> original = {
      A::AUTO_CONTRAST, A::EQUALIZE, A::INVERT, A::ROTATE, A::POSTERIZE, A::SOLARIZE, A::SOLARIZE_ADD,
      A::COLOR, A::CONTRAST, A::BRIGHTNESS, A::SHARPNESS, A::SHEAR_X, A::SHEAR_Y, A::TRANSLATE_X_REL,
      A::TRANSLATE_Y_REL};
  static const std::vector<AugmentOp> inc = {
      A::AUTO_CONTRAST, A::EQUALIZE, A::INVERT, A::ROTATE, A::POSTERIZE_INCREASING,
      A::SOLARIZE_INCREASING, A::SOLARIZE_ADD, A::COLOR_INCREASING, A::CONTRAST_INCREASING,
      A::BRIGHTNESS_INCREASING, A::SHARPNESS_INCREASING, A::SHEAR_X, A::SHEAR_Y, A::TRANSLATE_X_REL,
      A::TRANSLATE_Y_REL};
  // clang-format on
  return increasing ? inc : original;
}

namespace {

bool parse_int(const std::string& s, int& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (*end != '\0' || errno != 0 || v < std::numeric_limits<int>::min() ||
      v > std::numeric_limits<int>::max())
    return false;
  out = static_cast<int>(v);
  return true;
}

bool parse_double(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s.c_str(), &end);
  return *end == '\0' && errno == 0 && std::isfinite(out);
}

}  // namespace

RandAugmentConfig parse_rand_augment(const std::string& spec) {
  auto bad = [&](const std::string& why) {
    return std::invalid_argument(
        cat("RandAugment config '", spec, "': ", why, " (expected e.g. 'rand-m9-mstd0.5-inc1')"));
  };
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t dash = spec.find('-', start);
    parts.push_back(spec.substr(start, dash == std::string::npos ? std::string::npos : dash - start));
    if (dash == std::string::npos) break;
    start = dash + 1;
  }
  if (parts[0] != "rand") throw bad("must start with 'rand'");
  RandAugmentConfig cfg;
  // rand_augment_transform's own defaults, before the sections override them.
  cfg.magnitude = 10;
  cfg.num_layers = 2;
  cfg.magnitude_std = 0;
  cfg.magnitude_max = 10;
  cfg.prob = 0.5;
  cfg.increasing = false;
  for (size_t k = 1; k < parts.size(); ++k) {
    const std::string& sec = parts[k];
    if (sec.empty()) throw bad("empty section");
    // A section is a key of letters followed by its value, like timm's re.split(r'(\d.*)').
    size_t split = 0;
    while (split < sec.size() && !std::isdigit(static_cast<unsigned char>(sec[split]))) ++split;
    const std::string key = sec.substr(0, split), val = sec.substr(split);
    if (key == "w" || (!key.empty() && key[0] == 't'))
      throw bad("section '" + sec + "': op-set/weight selection is not supported");
    if (val.empty()) throw bad("section '" + sec + "' has no numeric value");
    int iv = 0;
    double dv = 0;
    if (key == "m") {
      if (!parse_int(val, iv)) throw bad("magnitude '" + sec + "' is not an integer");
      cfg.magnitude = iv;
    } else if (key == "n") {
      if (!parse_int(val, iv)) throw bad("layer count '" + sec + "' is not an integer");
      cfg.num_layers = iv;
    } else if (key == "mstd") {
      if (!parse_double(val, dv)) throw bad("magnitude std '" + sec + "' is not a number");
      cfg.magnitude_std = dv > 100 ? std::numeric_limits<double>::infinity() : dv;
    } else if (key == "mmax") {
      if (!parse_int(val, iv)) throw bad("magnitude max '" + sec + "' is not an integer");
      cfg.magnitude_max = iv == 0 ? 10 : iv;  // timm: `magnitude_max or _LEVEL_DENOM`
    } else if (key == "p") {
      if (!parse_double(val, dv)) throw bad("probability '" + sec + "' is not a number");
      cfg.prob = dv;
    } else if (key == "inc") {
      if (!parse_int(val, iv) || (iv != 0 && iv != 1)) throw bad("'" + sec + "' must be inc0 or inc1");
      cfg.increasing = iv == 1;
    } else {
      throw bad("unknown section '" + sec + "'");
    }
  }
  try {
    validate(cfg);
  } catch (const std::invalid_argument& e) {
    throw bad(e.what());
  }
  return cfg;
}

void validate(const RandAugmentConfig& cfg) {
  auto fail = [](const std::string& what) { return std::invalid_argument("RandAugmentConfig: " + what); };
  if (cfg.num_layers < 0) throw fail(cat("num_layers must be >= 0, got ", cfg.num_layers));
  if (!(cfg.magnitude >= 0) || !std::isfinite(cfg.magnitude))
    throw fail(cat("magnitude must be a finite value >= 0, got ", cfg.magnitude));
  if (!(cfg.magnitude_std >= 0)) throw fail(cat("magnitude_std must be >= 0, got ", cfg.magnitude_std));
  if (!(cfg.magnitude_max > 0 && cfg.magnitude_max <= 1000))  // timm's scale is 0..10
    throw fail(cat("magnitude_max must be in (0, 1000], got ", cfg.magnitude_max));
  if (!(cfg.prob >= 0 && cfg.prob <= 1)) throw fail(cat("prob must be in [0, 1], got ", cfg.prob));
  if (!(cfg.translate_pct >= 0) || !std::isfinite(cfg.translate_pct))
    throw fail(cat("translate_pct must be finite and >= 0, got ", cfg.translate_pct));
  if (cfg.resample.empty()) throw fail("resample must list at least one filter");
  for (Filter f : cfg.resample)
    if (f != Filter::BILINEAR && f != Filter::BICUBIC)
      throw fail("resample filters must be BILINEAR or BICUBIC");
}

Image apply_augment_op(const Image& img, AugmentOp op, double m, const RandAugmentConfig& cfg, Rng& rng) {
  check_image(img, "apply_augment_op");
  const double level = m / 10.0;  // timm's _LEVEL_DENOM
  auto negate = [&](double v) { return rng_uniform01(rng) > 0.5 ? -v : v; };
  auto resample = [&]() {
    if (cfg.resample.empty()) throw std::invalid_argument("RandAugmentConfig: resample is empty");
    return cfg.resample.size() == 1
               ? cfg.resample[0]
               : cfg.resample[rng_int(rng, 0, static_cast<int64_t>(cfg.resample.size()) - 1)];
  };
  auto enhance = [&]() { return level * 1.8 + 0.1; };
  auto enhance_inc = [&]() { return std::max(0.1, 1.0 + negate(level * 0.9)); };
  auto solarize_thr = [&]() { return std::min(256, static_cast<int>(level * 256)); };
  switch (op) {
    case AugmentOp::AUTO_CONTRAST:
      return auto_contrast(img);
    case AugmentOp::EQUALIZE:
      return equalize(img);
    case AugmentOp::INVERT:
      return invert(img);
    case AugmentOp::ROTATE: {
      const double deg = negate(level * 30.0);
      return rotate(img, deg, resample(), cfg.fill);
    }
    // Magnitudes above 10 (mmax > 10) push the bit count out of 0..8, where PIL's mask keeps
    // nothing (< 0) or everything (> 8).
    case AugmentOp::POSTERIZE:
      return posterize(img, std::clamp(static_cast<int>(level * 4), 0, 8));
    case AugmentOp::POSTERIZE_INCREASING:
      return posterize(img, std::clamp(4 - static_cast<int>(level * 4), 0, 8));
    case AugmentOp::SOLARIZE:
      return solarize(img, solarize_thr());
    case AugmentOp::SOLARIZE_INCREASING:
      return solarize(img, 256 - solarize_thr());
    case AugmentOp::SOLARIZE_ADD:
      return solarize_add(img, std::min(128, static_cast<int>(level * 110)), 128);
    case AugmentOp::COLOR:
      return enhance_color(img, enhance());
    case AugmentOp::COLOR_INCREASING:
      return enhance_color(img, enhance_inc());
    case AugmentOp::CONTRAST:
      return enhance_contrast(img, enhance());
    case AugmentOp::CONTRAST_INCREASING:
      return enhance_contrast(img, enhance_inc());
    case AugmentOp::BRIGHTNESS:
      return enhance_brightness(img, enhance());
    case AugmentOp::BRIGHTNESS_INCREASING:
      return enhance_brightness(img, enhance_inc());
    case AugmentOp::SHARPNESS:
      return enhance_sharpness(img, enhance());
    case AugmentOp::SHARPNESS_INCREASING:
      return enhance_sharpness(img, enhance_inc());
    case AugmentOp::SHEAR_X: {
      const double f = negate(level * 0.3);
      return shear_x(img, f, resample(), cfg.fill);
    }
    case AugmentOp::SHEAR_Y: {
      const double f = negate(level * 0.3);
      return shear_y(img, f, resample(), cfg.fill);
    }
    case AugmentOp::TRANSLATE_X_REL: {
      const double pct = negate(level * cfg.translate_pct);
      return translate_x(img, pct * img.width, resample(), cfg.fill);
    }
    case AugmentOp::TRANSLATE_Y_REL: {
      const double pct = negate(level * cfg.translate_pct);
      return translate_y(img, pct * img.height, resample(), cfg.fill);
    }
  }
  SKD_CHECK(false, "unhandled AugmentOp ", static_cast<int>(op));
  return img;
}

void rand_augment(Image& img, const RandAugmentConfig& cfg, Rng& rng) {
  validate(cfg);
  check_image(img, "rand_augment");
  const auto& ops = rand_augment_ops(cfg.increasing);
  for (int layer = 0; layer < cfg.num_layers; ++layer) {
    const AugmentOp op = ops[rng_int(rng, 0, static_cast<int64_t>(ops.size()) - 1)];
    if (cfg.prob < 1.0 && rng_uniform01(rng) > cfg.prob) continue;
    double m = cfg.magnitude;
    if (cfg.magnitude_std > 0) {
      m = std::isinf(cfg.magnitude_std) ? rng_uniform(rng, 0.0, m) : rng_normal(rng, m, cfg.magnitude_std);
    }
    m = std::max(0.0, std::min(m, cfg.magnitude_max));
    img = apply_augment_op(img, op, m, cfg, rng);
  }
}

// ---------------------------------------------------------------------------------------------
// The uint8 part of the train transform

Image train_crop(const Image& img, const TrainTransform& t, Rng& rng) {
  Image out = random_resized_crop(img, t.crop, rng);
  if (t.hflip > 0) random_flip_horizontal(out, t.hflip, rng);
  if (t.use_rand_augment) rand_augment(out, t.rand_augment, rng);
  return out;
}

}  // namespace skd::data
