// Image-side training augmentations of timm/DeiT with PIL numerics (RandomResizedCrop, flip,
// RandAugment and its ops), their configs, and the Rng draws they use; tensor-side steps in mixup.h.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "skd/data/image.h"
#include "skd/data/resize.h"

namespace skd::data {

// ---- Random draws. Every augmentation takes its randomness from the caller's Rng only, so a
// pipeline is reproducible from a seed. The semantics mirror Python's random module; the streams
// are not Python's (timm itself is only reproducible in distribution across versions).

double rng_uniform01(Rng& rng);                        // [0, 1), 53 random bits like random.random()
double rng_uniform(Rng& rng, double lo, double hi);    // lo + (hi - lo) * U, like random.uniform
int64_t rng_int(Rng& rng, int64_t lo, int64_t hi);     // unbiased, inclusive like random.randint
double rng_normal(Rng& rng, double mean, double std);  // Box-Muller
// Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b) (std::gamma_distribution).
double rng_beta(Rng& rng, double a, double b);

// ---- RandomResizedCrop (timm RandomResizedCropAndInterpolation / torchvision get_params).

struct CropBox {  // torchvision's (i, j, h, w)
  int top = 0, left = 0, height = 0, width = 0;
};

struct RandomResizedCrop {
  int size = 224;                                        // output is size x size
  std::array<double, 2> scale = {0.08, 1.0};             // area fraction range
  std::array<double, 2> ratio = {3.0 / 4.0, 4.0 / 3.0};  // w/h range, sampled in log space
  Filter filter = Filter::BICUBIC;
};

// Up to 10 tries of (area, log-ratio); then the central crop with the ratio clamped to the range.
CropBox random_resized_crop_params(int width, int height, const RandomResizedCrop& cfg, Rng& rng);
Image crop(const Image& img, const CropBox& box);  // box must lie inside the image
// Crops, then resizes with resize_pil (torchvision crops first, so no pixel outside the box
// contributes).
Image random_resized_crop(const Image& img, const RandomResizedCrop& cfg, Rng& rng);

Image flip_horizontal(const Image& img);
// Flips with probability p; returns whether it did.
bool random_flip_horizontal(Image& img, double p, Rng& rng);

// ---- PIL image operations used by RandAugment (Pillow 9.4 numerics; RGB or gray).

using Fill = std::array<uint8_t, 3>;
// timm's RandAugment fill: round(255 * ImageNet mean).
inline constexpr Fill kRandAugmentFill = {124, 116, 104};

// Image.transform(size, AFFINE, coeffs, resample, fillcolor=fill): output pixel centre (x, y)
// samples the input at (c0 x + c1 y + c2, c3 x + c4 y + c5); no antialiasing. BILINEAR or
// BICUBIC only (std::invalid_argument for NEAREST). Gray images fill with fill[0].
Image affine_transform(const Image& img, const std::array<double, 6>& coeffs, Filter filter,
                       const Fill& fill);
// Image.rotate(degrees) counter-clockwise about the image centre, same size, with PIL's exact
// shortcuts for 0 and 180 degrees (and 90/270 on square images).
Image rotate(const Image& img, double degrees, Filter filter, const Fill& fill);
Image shear_x(const Image& img, double factor, Filter filter, const Fill& fill);
Image shear_y(const Image& img, double factor, Filter filter, const Fill& fill);
// Output pixel x reads input x + pixels (positive moves the content left / up).
Image translate_x(const Image& img, double pixels, Filter filter, const Fill& fill);
Image translate_y(const Image& img, double pixels, Filter filter, const Fill& fill);

// ImageEnhance: blend(degenerate, img, factor) with PIL's float blend (truncating, clipped).
Image enhance_color(const Image& img, double factor);       // degenerate: grayscale
Image enhance_contrast(const Image& img, double factor);    // degenerate: mean gray level
Image enhance_brightness(const Image& img, double factor);  // degenerate: black
Image enhance_sharpness(const Image& img, double factor);   // degenerate: 3x3 SMOOTH filter
// convert("L"): ITU-R 601-2 luma in PIL's 16-bit fixed point; gray images are returned as is.
Image to_gray(const Image& img);

// ImageOps (per channel).
Image auto_contrast(const Image& img);  // cutoff 0
Image equalize(const Image& img);
Image invert(const Image& img);
Image posterize(const Image& img, int bits);                         // keep the top `bits` bits (0..8)
Image solarize(const Image& img, int threshold);                     // invert values >= threshold
Image solarize_add(const Image& img, int add, int threshold = 128);  // +add below threshold, clip

// ---- RandAugment (timm rand_augment_transform).

enum class AugmentOp {
  AUTO_CONTRAST,
  EQUALIZE,
  INVERT,
  ROTATE,
  POSTERIZE,
  POSTERIZE_INCREASING,
  SOLARIZE,
  SOLARIZE_INCREASING,
  SOLARIZE_ADD,
  COLOR,
  COLOR_INCREASING,
  CONTRAST,
  CONTRAST_INCREASING,
  BRIGHTNESS,
  BRIGHTNESS_INCREASING,
  SHARPNESS,
  SHARPNESS_INCREASING,
  SHEAR_X,
  SHEAR_Y,
  TRANSLATE_X_REL,
  TRANSLATE_Y_REL,
};
const char* augment_op_name(AugmentOp op);  // timm's name, e.g. "PosterizeIncreasing"
// timm's _RAND_TRANSFORMS / _RAND_INCREASING_TRANSFORMS (15 ops each, timm's order).
const std::vector<AugmentOp>& rand_augment_ops(bool increasing);

// Defaults: DeiT's 'rand-m9-mstd0.5-inc1' with the hparams timm's create_transform passes
// (fill from the ImageNet mean, interpolation 'bicubic').
struct RandAugmentConfig {
  int num_layers = 2;           // ops per image, chosen uniformly with replacement
  double magnitude = 9;         // on timm's 0..10 scale
  double magnitude_std = 0.5;   // > 0: magnitude ~ N(m, std) per op; infinity: U(0, m)
  double magnitude_max = 10;    // magnitude is clipped to [0, magnitude_max]
  double prob = 0.5;            // each chosen op is applied with this probability
  bool increasing = true;       // op set: 'increasing' variants (inc1) or the original set
  double translate_pct = 0.45;  // TranslateRel at magnitude 10, as a fraction of the size
  Fill fill = kRandAugmentFill;
  // Resampling of the geometric ops, picked uniformly per op application. timm uses bicubic
  // alone when create_transform gets interpolation='bicubic' (DeiT), {BILINEAR, BICUBIC} when
  // no interpolation is given.
  std::vector<Filter> resample = {Filter::BICUBIC};
};

// Parses timm's config string: "rand" then '-'-separated sections m<int> (magnitude), n<int>
// (layers), mstd<float> (> 100 means uniform), mmax<int>, p<float>, inc<0|1>. Sections not given
// keep timm's parser defaults (m10 n2 mstd0 p0.5 inc0), fill/resample keep the struct defaults.
// Throws std::invalid_argument naming the bad section ("w"/"t" weight sections are unsupported).
RandAugmentConfig parse_rand_augment(const std::string& spec);
// Checks ranges; throws std::invalid_argument naming the field.
void validate(const RandAugmentConfig& cfg);

// One op at a given (already noised and clipped) magnitude, mapped to its argument as timm's
// level functions do (random sign for rotate/shear/translate/enhance-increasing, random resample
// choice for geometric ops, both from rng).
Image apply_augment_op(const Image& img, AugmentOp op, double magnitude, const RandAugmentConfig& cfg,
                       Rng& rng);
// num_layers times: pick an op, apply it with probability prob at a noised magnitude.
void rand_augment(Image& img, const RandAugmentConfig& cfg, Rng& rng);

// ---- The DeiT training transform (timm create_transform(is_training=True, ...)).

// RandomErasing on the normalised tensor (implemented in mixup.cpp with the tensor code).
enum class EraseMode { CONST, RAND, PIXEL };  // zeros / one N(0,1) value per channel / per pixel
struct RandomErasingConfig {
  double prob = 0.25;
  double min_area = 0.02, max_area = 1.0 / 3.0;     // fraction of the image area (split by count)
  double min_aspect = 0.3, max_aspect = 1.0 / 0.3;  // log-uniform h/w
  EraseMode mode = EraseMode::PIXEL;
  int min_count = 1, max_count = 1;  // boxes per image, uniform in [min, max]
};

struct TrainTransform {
  RandomResizedCrop crop;  // 224, scale (0.08, 1), ratio (3/4, 4/3), bicubic
  double hflip = 0.5;
  bool use_rand_augment = true;
  RandAugmentConfig rand_augment;  // rand-m9-mstd0.5-inc1
  // The ImageNet statistics (kImagenetMean/Std of eval_transform.h, which pulls in torch).
  std::array<float, 3> mean = {0.485f, 0.456f, 0.406f};
  std::array<float, 3> std = {0.229f, 0.224f, 0.225f};
  RandomErasingConfig erasing;
};

// Steps 1-3 of the transform on uint8 pixels: RandomResizedCrop, flip, RandAugment. The tensor
// steps (normalise, RandomErasing) are train_transform() in mixup.h.
Image train_crop(const Image& img, const TrainTransform& t, Rng& rng);

}  // namespace skd::data
