/* V2 datatype names and sizes; see dtype.h. */
#include "dtype.h"

#include <string.h>

static const struct {
    const char *name;
    onnx_dtype dt;
    size_t size;
} dtypes[] = {
    {"BOOL", ONNX_DTYPE_BOOL, 1},
    {"UINT8", ONNX_DTYPE_UINT8, 1},
    {"UINT16", ONNX_DTYPE_UINT16, 2},
    {"UINT32", ONNX_DTYPE_UINT32, 4},
    {"UINT64", ONNX_DTYPE_UINT64, 8},
    {"INT8", ONNX_DTYPE_INT8, 1},
    {"INT16", ONNX_DTYPE_INT16, 2},
    {"INT32", ONNX_DTYPE_INT32, 4},
    {"INT64", ONNX_DTYPE_INT64, 8},
    {"FP16", ONNX_DTYPE_FLOAT16, 2},
    {"FP32", ONNX_DTYPE_FLOAT, 4},
    {"FP64", ONNX_DTYPE_DOUBLE, 8},
    {"BYTES", ONNX_DTYPE_STRING, sizeof(char *)},
};
#define N_DTYPES (sizeof(dtypes) / sizeof(dtypes[0]))

onnx_dtype proto_dtype_from_name(const char *name, size_t len)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strlen(dtypes[i].name) == len && !memcmp(dtypes[i].name, name, len))
            return dtypes[i].dt;
    return ONNX_DTYPE_UNDEFINED;
}

const char *proto_dtype_name(onnx_dtype dt)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtypes[i].dt == dt) return dtypes[i].name;
    return NULL;
}

size_t proto_dtype_size(onnx_dtype dt)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtypes[i].dt == dt) return dtypes[i].size;
    return 0;
}

uint16_t proto_half_from_float(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, mant = x & 0x7fffff;
    int32_t exp = (int32_t)((x >> 23) & 0xff);
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0)); /* inf / nan */
    exp = exp - 127 + 15;
    if (exp >= 0x1f) return (uint16_t)(sign | 0x7c00); /* overflow */
    if (exp <= 0) {                                    /* subnormal */
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)exp << 10) | (mant >> 13), rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* may carry into the exponent: correct */
    return (uint16_t)(sign | h);
}

float proto_float_from_half(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, x;
    if (exp == 0) {
        if (!mant)
            x = sign;
        else { /* subnormal: normalize */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                exp--;
            }
            x = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 0x1f)
        x = sign | 0x7f800000 | (mant << 13);
    else
        x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

int64_t proto_tensor_numel(const onnx_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++) n *= t->dims[d];
    return n;
}
