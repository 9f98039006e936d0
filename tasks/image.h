// image.h: the LRA Image task (grayscale CIFAR-10, lra.md 1.5).
#ifndef LRA_TASK_IMAGE_H
#define LRA_TASK_IMAGE_H

#include "task.h"

extern const lra_task_vtable lra_task_image;

#define LRA_IMAGE_SIDE    32
#define LRA_IMAGE_CLASSES 10

// Grayscale conversions (lra.md 1.5, 7.3). tf: tf.image.rgb_to_grayscale on
// uint8, in float32: floor(255.5 * (0.2989 R + 0.5870 G + 0.1140 B) / 255).
// pil: PIL's convert("L"): (19595 R + 38470 G + 7471 B + 0x8000) >> 16.
// Both map R = G = B = v back to v.
uint8_t lra_gray_tf(uint8_t r, uint8_t g, uint8_t b);
uint8_t lra_gray_pil(uint8_t r, uint8_t g, uint8_t b);

// Names of the generated classes (shape families), index = label.
extern const char *const lra_image_class_names[LRA_IMAGE_CLASSES];

#endif // LRA_TASK_IMAGE_H
