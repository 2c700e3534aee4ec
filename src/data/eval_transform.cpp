// Image decoding to RGB (OpenCV) and the torchvision/timm eval transform (resize, crop, normalize).
#include "skd/data/eval_transform.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/data/resize.h"

#ifdef SKD_HAVE_LIBJPEG
#include <jpeglib.h>

#include <csetjmp>
#endif

#ifdef SKD_HAVE_OPENCV
#define SKD_DECODE_WITH_OPENCV 1
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#endif

namespace skd::data {
namespace {

// libjpeg (inside OpenCV) only warns on a truncated JPEG and pads the missing part with grey, while
// PIL refuses to load it ("image file is truncated"). Walking the marker segments up to EOI tells
// the two apart; segment lengths are followed, so thumbnails inside APPn segments do not count as
// the end and trailing bytes after EOI stay allowed, as in PIL. Stray bytes between segments are
// skipped, as libjpeg does (with a warning).
bool jpeg_reaches_eoi(const uint8_t* d, size_t n) {
  size_t i = 2;  // after SOI
  while (i + 1 < n) {
    if (d[i] != 0xFF) {
      ++i;
      continue;
    }
    const uint8_t m = d[i + 1];
    if (m == 0xFF) {  // fill byte before a marker
      ++i;
      continue;
    }
    i += 2;
    if (m == 0xD9) return true;                                        // EOI
    if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue;  // stray/TEM/RSTn/SOI
    if (i + 2 > n) return false;
    const size_t len = (static_cast<size_t>(d[i]) << 8) | d[i + 1];
    if (len < 2 || i + len > n) return false;
    i += len;
    if (m != 0xDA) continue;
    // Entropy-coded data after SOS runs to the next marker other than stuffing (FF00) or RSTn.
    while (i + 1 < n) {
      if (d[i] == 0xFF && d[i + 1] != 0x00 && !(d[i + 1] >= 0xD0 && d[i + 1] <= 0xD7)) break;
      ++i;
    }
  }
  return false;
}

uint32_t be16(const uint8_t* p) { return (uint32_t{p[0]} << 8) | p[1]; }
uint32_t be32(const uint8_t* p) { return (be16(p) << 16) | be16(p + 2); }
uint32_t le16(const uint8_t* p) { return (uint32_t{p[1]} << 8) | p[0]; }
uint32_t le24(const uint8_t* p) { return (uint32_t{p[2]} << 16) | le16(p); }
uint32_t le32(const uint8_t* p) { return (le16(p + 2) << 16) | le16(p); }

struct HeaderDims {
  const char* format = nullptr;  // nullptr: not one of the supported formats
  bool found = false;            // false: the header is too short or lacks its size fields
  uint64_t width = 0, height = 0;
};

// Width and height of a baseline/progressive JPEG from its first SOFn segment (same marker walk
// as jpeg_reaches_eoi; the frame header comes before any scan).
void jpeg_dims(const uint8_t* d, size_t n, HeaderDims& out) {
  size_t i = 2;
  while (i + 1 < n) {
    if (d[i] != 0xFF || d[i + 1] == 0xFF) {
      ++i;
      continue;
    }
    const uint8_t m = d[i + 1];
    i += 2;
    if (m == 0xD9 || m == 0xDA) return;  // EOI or a scan before any frame header
    if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue;
    if (i + 2 > n) return;
    const size_t len = be16(d + i);
    if (len < 2 || i + len > n) return;
    const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof) {
      if (len < 7) return;
      out.height = be16(d + i + 3);
      out.width = be16(d + i + 5);
      out.found = true;
      return;
    }
    i += len;
  }
}

// Skips whitespace and '#' comments, then reads a decimal number (saturating) of a PNM header.
bool pnm_number(const uint8_t* d, size_t n, size_t& i, uint64_t& value) {
  while (i < n && (std::isspace(d[i]) || d[i] == '#')) {
    if (d[i] == '#')
      while (i < n && d[i] != '\n' && d[i] != '\r') ++i;
    else
      ++i;
  }
  if (i >= n || !std::isdigit(d[i])) return false;
  value = 0;
  for (; i < n && std::isdigit(d[i]); ++i) value = std::min<uint64_t>(value * 10 + (d[i] - '0'), UINT32_MAX);
  return true;
}

// The format and the claimed dimensions of an image file, from its header alone.
HeaderDims header_dims(const uint8_t* d, size_t n) {
  HeaderDims h;
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) {
    h.format = "JPEG";
    jpeg_dims(d, n, h);
  } else if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) {
    h.format = "PNG";
    if (n >= 24 && std::memcmp(d + 12, "IHDR", 4) == 0) {
      h.width = be32(d + 16);
      h.height = be32(d + 20);
      h.found = true;
    }
  } else if (n >= 2 && d[0] == 'B' && d[1] == 'M') {
    h.format = "BMP";
    if (n >= 22 && le32(d + 14) == 12) {  // OS/2 BITMAPCOREHEADER: 16-bit sizes
      h.width = le16(d + 18);
      h.height = le16(d + 20);
      h.found = true;
    } else if (n >= 26) {  // BITMAPINFOHEADER and later: signed 32-bit (negative height = top-down)
      h.width = static_cast<uint64_t>(std::abs(static_cast<int64_t>(static_cast<int32_t>(le32(d + 18)))));
      h.height = static_cast<uint64_t>(std::abs(static_cast<int64_t>(static_cast<int32_t>(le32(d + 22)))));
      h.found = true;
    }
  } else if (n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '6') {
    h.format = "PNM";
    size_t i = 2;
    h.found = pnm_number(d, n, i, h.width) && pnm_number(d, n, i, h.height);
  } else if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0) {
    h.format = "WebP";
    if (n >= 30 && std::memcmp(d + 12, "VP8X", 4) == 0) {
      h.width = 1 + le24(d + 24);
      h.height = 1 + le24(d + 27);
      h.found = true;
    } else if (n >= 25 && std::memcmp(d + 12, "VP8L", 4) == 0) {
      const uint32_t bits = le32(d + 21);
      h.width = 1 + (bits & 0x3FFF);
      h.height = 1 + ((bits >> 14) & 0x3FFF);
      h.found = true;
    } else if (n >= 30 && std::memcmp(d + 12, "VP8 ", 4) == 0) {
      h.width = le16(d + 26) & 0x3FFF;
      h.height = le16(d + 28) & 0x3FFF;
      h.found = true;
    }
  } else if (n >= 8 && (std::memcmp(d, "II*\0", 4) == 0 || std::memcmp(d, "MM\0*", 4) == 0)) {
    // Classic TIFF: ImageWidth (256) and ImageLength (257) of the first IFD, which is the page
    // OpenCV decodes.
    h.format = "TIFF";
    const bool le = d[0] == 'I';
    auto u16 = [&](size_t at) { return le ? le16(d + at) : be16(d + at); };
    auto u32 = [&](size_t at) { return le ? le32(d + at) : be32(d + at); };
    const size_t ifd = u32(4);
    if (ifd <= n && n - ifd >= 2) {
      const size_t count = u16(ifd);
      bool w = false, l = false;
      for (size_t e = 0; e < count && ifd + 2 + 12 * (e + 1) <= n; ++e) {
        const size_t at = ifd + 2 + 12 * e;
        const uint32_t tag = u16(at), type = u16(at + 2);
        if ((tag != 256 && tag != 257) || (type != 3 && type != 4)) continue;
        const uint64_t v = type == 3 ? u16(at + 8) : u32(at + 8);
        (tag == 256 ? h.width : h.height) = v;
        (tag == 256 ? w : l) = true;
      }
      h.found = w && l;
    }
  }
  return h;
}

#ifdef SKD_HAVE_LIBJPEG
// JPEGs go straight through libjpeg(-turbo) into RGB: the same library and default settings
// (ISLOW IDCT, fancy upsampling) as PIL, so pixels are identical, and faster than OpenCV's path,
// which decodes to BGR and needs a second pass. Colour spaces other than YCbCr/gray/RGB (CMYK,
// YCCK) are left to OpenCV (returns false).
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_fail(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void jpeg_quiet(j_common_ptr, int) {}  // corrupt-data warnings: decode anyway, as PIL does

bool decode_jpeg_rgb(const uint8_t* data, size_t size, const std::string& source, Image& out) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  err.mgr.emit_message = jpeg_quiet;
  bool supported = true;
  // Only plain data lives in this frame between setjmp and a possible longjmp; `out` was built
  // by the caller and is simply left as it is on failure.
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw FormatError(cat("'", source, "': cannot decode JPEG: ", err.message));
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  // decode_image checked the first frame header already; this is libjpeg's own reading of it.
  if (uint64_t{cinfo.image_width} * cinfo.image_height > static_cast<uint64_t>(kMaxImagePixels)) {
    const std::string size = cat(cinfo.image_width, "x", cinfo.image_height);
    jpeg_destroy_decompress(&cinfo);
    throw FormatError(cat("'", source, "': JPEG header claims ", size, " pixels, more than the limit of ",
                          kMaxImagePixels));
  }
  const auto cs = cinfo.jpeg_color_space;
  supported = cs == JCS_YCbCr || cs == JCS_GRAYSCALE || cs == JCS_RGB;
  if (supported) {
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    out.width = static_cast<int>(cinfo.output_width);
    out.height = static_cast<int>(cinfo.output_height);
    out.channels = 3;
    out.pixels.resize(static_cast<size_t>(out.width) * out.height * 3);
    while (cinfo.output_scanline < cinfo.output_height) {
      JSAMPROW row = out.pixels.data() + static_cast<size_t>(cinfo.output_scanline) * out.width * 3;
      jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
  }
  jpeg_destroy_decompress(&cinfo);
  return supported;
}
#endif

// torchvision pads a too-small image symmetrically (extra pixel right/bottom) with zeros.
Image pad_to_at_least(const Image& img, int width, int height) {
  const int pad_l = width > img.width ? (width - img.width) / 2 : 0;
  const int pad_t = height > img.height ? (height - img.height) / 2 : 0;
  const int pad_r = width > img.width ? (width - img.width + 1) / 2 : 0;
  const int pad_b = height > img.height ? (height - img.height + 1) / 2 : 0;
  Image out = blank_image(img.width + pad_l + pad_r, img.height + pad_t + pad_b, img.channels);
  const size_t len = static_cast<size_t>(img.width) * img.channels;
  for (int y = 0; y < img.height; ++y)
    std::memcpy(out.row(y + pad_t) + static_cast<size_t>(pad_l) * img.channels, img.row(y), len);
  return out;
}

// Python's int(round(d / 2.0)) for d >= 0: halves go to the even neighbour.
int round_half_even_half(int d) {
  const int q = d / 2;
  return (d % 2 == 0 || q % 2 == 0) ? q : q + 1;
}

void check_image(const Image& img, const char* what) {
  if (img.width <= 0 || img.height <= 0 || img.channels <= 0 ||
      img.pixels.size() != static_cast<size_t>(img.width) * img.height * img.channels)
    throw std::invalid_argument(cat(what, ": invalid image ", img.width, "x", img.height, "x", img.channels,
                                    " with ", img.pixels.size(), " bytes"));
}

}  // namespace

Image decode_image(const uint8_t* data, size_t size, const std::string& source, int64_t max_pixels) {
  if (data == nullptr || size == 0) throw FormatError(cat("'", source, "': empty image file"));
  // Decoders size their pixel buffer from the header before reading any pixel data, so the claim
  // is checked here first; formats whose header is not checked here are not passed on at all.
  const HeaderDims dims = header_dims(data, size);
  if (!dims.format)
    throw FormatError(cat("'", source, "': not an image in a supported format (expected JPEG, PNG, BMP, PPM/PGM, "
                          "WebP or TIFF)"));
  if (!dims.found)
    throw FormatError(cat("'", source, "': truncated or corrupt ", dims.format, " header (no image size)"));
  if (max_pixels <= 0 || max_pixels > kMaxImagePixels)
    throw std::invalid_argument(
        cat("decode_image: max_pixels ", max_pixels, " must be in [1, ", kMaxImagePixels, "]"));
  if (dims.width * dims.height > static_cast<uint64_t>(max_pixels))
    throw FormatError(cat("'", source, "': ", dims.format, " header claims ", dims.width, "x", dims.height,
                          " pixels, more than the limit of ", max_pixels,
                          " (corrupt header or decompression bomb)"));
  const bool jpeg = size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
  if (jpeg && !jpeg_reaches_eoi(data, size))
    throw FormatError(cat("'", source, "': truncated or corrupt JPEG (no end-of-image marker)"));
#ifdef SKD_HAVE_LIBJPEG
  if (jpeg) {
    Image out;
    if (decode_jpeg_rgb(data, size, source, out)) return out;
  }
#endif
#ifdef SKD_DECODE_WITH_OPENCV
  if (size > static_cast<size_t>(INT32_MAX))
    throw FormatError(cat("'", source, "': image file too large (", size, " bytes)"));
  cv::Mat m;
  try {
    // IMREAD_UNCHANGED: keep gray/alpha/16-bit so they are converted below like PIL's
    // convert('RGB'), and ignore EXIF orientation, which Image.open does not apply either.
    const cv::Mat buf(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t*>(data));
    m = cv::imdecode(buf, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw FormatError(cat("'", source, "': cannot decode image: ", e.what()));
  }
  if (m.empty() || m.dims != 2)
    throw FormatError(cat("'", source, "': not a decodable image (unknown format or corrupt data)"));
  const int cn = m.channels();
  if (cn < 1 || cn > 4) throw FormatError(cat("'", source, "': unsupported channel count ", cn));
  if (m.depth() != CV_8U && m.depth() != CV_16U)
    throw FormatError(cat("'", source, "': unsupported sample type (only 8- and 16-bit integer)"));
  if (!m.isContinuous()) m = m.clone();
  Image out = blank_image(m.cols, m.rows, 3);
  // Channel order from OpenCV: gray, gray+alpha, BGR or BGRA. Alpha is dropped without
  // compositing, as PIL's convert('RGB') does. 16-bit samples keep their high byte: that is
  // what PIL does for 16-bit RGB(A) PNGs; for 16-bit gray PIL would instead clamp at 255
  // ('I;16' -> 'L'), which is rarely what anyone wants and is not reproduced.
  // The copy is OpenCV's mixChannels: a 16-bit image is viewed as bytes, two per sample, of
  // which the high one is taken. A per-pixel loop here took seconds on a header-sized
  // decompression bomb under the sanitizers.
  const int src_for_rgb[4][3] = {{0, 0, 0}, {0, 0, 0}, {2, 1, 0}, {2, 1, 0}};
  const int* map = src_for_rgb[cn - 1];
  const bool wide = m.depth() == CV_16U;
  const uint16_t probe = 1;
  const int high_byte = *reinterpret_cast<const uint8_t*>(&probe) == 1 ? 1 : 0;  // 1 on little-endian
  const cv::Mat src = wide ? cv::Mat(m.rows, m.cols, CV_8UC(2 * cn), m.data) : m;
  cv::Mat dst(m.rows, m.cols, CV_8UC3, out.pixels.data());
  int pairs[6];
  for (int c = 0; c < 3; ++c) {
    pairs[2 * c] = wide ? 2 * map[c] + high_byte : map[c];
    pairs[2 * c + 1] = c;
  }
  cv::mixChannels(&src, 1, &dst, 1, pairs, 3);
  return out;
#else
  throw std::runtime_error(cat("'", source, "': cannot decode: skd was built without OpenCV"));
#endif
}

Image decode_image_file(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  return decode_image(bytes.data(), bytes.size(), path);
}

void check_image_shape(const Image& img, const std::string& source) {
  const int64_t lo = std::min(img.width, img.height), hi = std::max(img.width, img.height);
  if (lo <= 0)
    throw FormatError(cat("'", source, "': empty image (", img.width, "x", img.height, " pixels)"));
  if (hi > lo * int64_t{kMaxAspectRatio})
    throw FormatError(cat("'", source, "': ", img.width, "x", img.height, " pixels, an aspect ratio beyond ",
                          kMaxAspectRatio, ":1 (resizing its shorter side to the model's input size would need ",
                          "an image ", hi / lo, " times longer than wide); refused as a degenerate image"));
}

Image resize_shorter_side(const Image& img, int size, Filter filter) {
  check_image(img, "resize_shorter_side");
  check_image_shape(img, "resize_shorter_side");
  if (size <= 0) throw std::invalid_argument(cat("resize_shorter_side: size ", size, " must be > 0"));
  const bool w_short = img.width <= img.height;
  const int shorter = w_short ? img.width : img.height;
  const int longer = w_short ? img.height : img.width;
  // torchvision: int(size * long / short), a true division of Python ints then truncation. The
  // double quotient of two exact integers is correctly rounded in both languages.
  const double q = static_cast<double>(static_cast<int64_t>(size) * longer) / shorter;
  if (q >= 1 << 30)
    throw std::invalid_argument(
        cat("resize_shorter_side: ", img.width, "x", img.height, " to shorter side ", size, " is too large"));
  const int new_long = static_cast<int>(q);
  const int w = w_short ? size : new_long;
  const int h = w_short ? new_long : size;
  return resize_pil(img, w, h, filter);
}

Image center_crop(const Image& img, int width, int height) {
  check_image(img, "center_crop");
  if (width <= 0 || height <= 0)
    throw std::invalid_argument(cat("center_crop: size ", width, "x", height, " must be > 0"));
  if (width > img.width || height > img.height) {
    Image padded = pad_to_at_least(img, width, height);
    if (padded.width == width && padded.height == height) return padded;
    return center_crop(padded, width, height);
  }
  const int top = round_half_even_half(img.height - height);
  const int left = round_half_even_half(img.width - width);
  Image out = blank_image(width, height, img.channels);
  const size_t len = static_cast<size_t>(width) * img.channels;
  for (int y = 0; y < height; ++y)
    std::memcpy(out.row(y), img.row(top + y) + static_cast<size_t>(left) * img.channels, len);
  return out;
}

int eval_resize_size(const EvalTransform& t) {
  if (t.size <= 0 || !(t.crop_pct > 0) || !std::isfinite(t.crop_pct))
    throw std::invalid_argument(
        cat("eval transform: size ", t.size, " and crop_pct ", t.crop_pct, " must be positive"));
  // Python's int(size / crop_pct) / math.floor: no epsilon, so e.g. 132 / 0.55 gives 239 here
  // exactly as in timm (the IEEE quotient is 239.99999999999997 in both languages).
  const double q = std::floor(t.size / t.crop_pct);
  if (q < 1 || q > 1e6) throw std::invalid_argument(cat("eval transform: resize size ", q, " out of range"));
  return static_cast<int>(q);
}

Image eval_crop(const Image& img, const EvalTransform& t) {
  return center_crop(resize_shorter_side(img, eval_resize_size(t), t.interpolation), t.size, t.size);
}

torch::Tensor to_normalized_tensor(const Image& img, const std::array<float, 3>& mean,
                                   const std::array<float, 3>& stdev) {
  check_image(img, "to_normalized_tensor");
  if (img.channels != 3 && img.channels != 1)
    throw std::invalid_argument(cat("to_normalized_tensor: expected 1 or 3 channels, got ", img.channels));
  // One table per channel; each entry is computed exactly as ToTensor + Normalize do in float32
  // (x / 255, then (x - mean) / std), so results are bit-identical to torchvision.
  float lut[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) lut[c][v] = (static_cast<float>(v) / 255.0f - mean[c]) / stdev[c];
  const int64_t hw = static_cast<int64_t>(img.width) * img.height;
  torch::Tensor out = torch::empty({3, img.height, img.width}, torch::kFloat32);
  float* o = out.data_ptr<float>();
  const uint8_t* p = img.pixels.data();
  const int cn = img.channels;
  for (int c = 0; c < 3; ++c) {
    const int sc = cn == 1 ? 0 : c;  // gray is replicated, as convert('RGB') would
    float* oc = o + c * hw;
    for (int64_t i = 0; i < hw; ++i) oc[i] = lut[c][p[i * cn + sc]];
  }
  return out;
}

torch::Tensor eval_transform(const Image& img, const EvalTransform& t) {
  return to_normalized_tensor(eval_crop(img, t), t.mean, t.std);
}

}  // namespace skd::data
