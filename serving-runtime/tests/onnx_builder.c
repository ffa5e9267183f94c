/* onnx_builder: protobuf-c model writer for tests (see onnx_builder.h). */
#include "onnx_builder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/engine/region.h"
#include "onnx/onnx.pb-c.h"

#define MB_MAX 64

struct mb_node {
    Onnx__NodeProto p;
    Onnx__AttributeProto *attrs[MB_MAX];
};

struct mb {
    region *rg;
    Onnx__ModelProto m;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opsets[1];
    Onnx__NodeProto *nodes[MB_MAX];
    Onnx__ValueInfoProto *inputs[MB_MAX], *outputs[MB_MAX];
    Onnx__TensorProto *inits[MB_MAX];
};

static void *mb_alloc(mb *b, size_t n)
{
    return region_alloc(b->rg, n);
}
static char *mb_str(mb *b, const char *s)
{
    return region_strndup(b->rg, s, strlen(s));
}

mb *mb_new(int opset)
{
    mb *b = calloc(1, sizeof(*b));
    b->rg = region_create();
    onnx__model_proto__init(&b->m);
    onnx__graph_proto__init(&b->g);
    onnx__operator_set_id_proto__init(&b->opset);
    b->opset.domain = mb_str(b, "");
    b->opset.has_version = 1;
    b->opset.version = opset;
    b->opsets[0] = &b->opset;
    b->m.n_opset_import = 1;
    b->m.opset_import = b->opsets;
    b->m.has_ir_version = 1;
    b->m.ir_version = 8;
    b->m.graph = &b->g;
    b->g.name = mb_str(b, "test");
    b->g.node = b->nodes;
    b->g.input = b->inputs;
    b->g.output = b->outputs;
    b->g.initializer = b->inits;
    return b;
}

void mb_free(mb *b)
{
    if (!b) return;
    region_free(b->rg);
    free(b);
}

static Onnx__ValueInfoProto *value_info(mb *b, const char *name, int dtype, int rank,
                                        const int64_t *dims)
{
    Onnx__ValueInfoProto *vi = mb_alloc(b, sizeof(*vi));
    onnx__value_info_proto__init(vi);
    vi->name = mb_str(b, name);
    if (!dtype) return vi;
    Onnx__TypeProto *tp = mb_alloc(b, sizeof(*tp));
    onnx__type_proto__init(tp);
    Onnx__TypeProto__Tensor *tt = mb_alloc(b, sizeof(*tt));
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = dtype;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->type = tp;
    if (rank < 0) return vi;
    Onnx__TensorShapeProto *sp = mb_alloc(b, sizeof(*sp));
    onnx__tensor_shape_proto__init(sp);
    sp->n_dim = (size_t)rank;
    sp->dim = mb_alloc(b, sizeof(void *) * (size_t)(rank + 1));
    for (int i = 0; i < rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = mb_alloc(b, sizeof(*d));
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i] >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = mb_str(b, "N");
        }
        sp->dim[i] = d;
    }
    tt->shape = sp;
    return vi;
}

void mb_input(mb *b, const char *name, int dtype, int rank, const int64_t *dims)
{
    b->inputs[b->g.n_input++] = value_info(b, name, dtype, rank, dims);
}

void mb_output(mb *b, const char *name, int dtype)
{
    b->outputs[b->g.n_output++] = value_info(b, name, dtype, -1, NULL);
}

static Onnx__TensorProto *tensor(mb *b, const char *name, int dtype, int rank, const int64_t *dims,
                                 const void *data, size_t bytes)
{
    Onnx__TensorProto *t = mb_alloc(b, sizeof(*t));
    onnx__tensor_proto__init(t);
    t->name = mb_str(b, name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)rank;
    t->dims = mb_alloc(b, sizeof(int64_t) * (size_t)(rank + 1));
    memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = mb_alloc(b, bytes + 1);
    memcpy(t->raw_data.data, data, bytes);
    return t;
}

static size_t numel(int rank, const int64_t *dims)
{
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= (size_t)dims[i];
    return n;
}

void mb_init_float(mb *b, const char *name, int rank, const int64_t *dims, const float *data)
{
    b->inits[b->g.n_initializer++] =
        tensor(b, name, 1, rank, dims, data, numel(rank, dims) * sizeof(float));
}

void mb_init_int64(mb *b, const char *name, int rank, const int64_t *dims, const int64_t *data)
{
    b->inits[b->g.n_initializer++] =
        tensor(b, name, 7, rank, dims, data, numel(rank, dims) * sizeof(int64_t));
}

static size_t split_names(mb *b, const char *list, char ***out)
{
    size_t n = 1;
    for (const char *p = list; *p; p++) n += *p == ',';
    if (!*list) n = 0;
    char **v = mb_alloc(b, sizeof(char *) * (n + 1));
    const char *s = list;
    for (size_t i = 0; i < n; i++) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        v[i] = region_strndup(b->rg, s, len);
        s = e ? e + 1 : s + len;
    }
    *out = v;
    return n;
}

mb_node *mb_add_node(mb *b, const char *op, const char *inputs, const char *outputs)
{
    mb_node *n = mb_alloc(b, sizeof(*n));
    onnx__node_proto__init(&n->p);
    n->p.op_type = mb_str(b, op);
    char name[64];
    snprintf(name, sizeof name, "%s_%zu", op, b->g.n_node);
    n->p.name = mb_str(b, name);
    n->p.n_input = split_names(b, inputs, &n->p.input);
    n->p.n_output = split_names(b, outputs, &n->p.output);
    n->p.attribute = n->attrs;
    b->nodes[b->g.n_node++] = &n->p;
    return n;
}

static Onnx__AttributeProto *attr(mb *b, mb_node *n, const char *name, int type)
{
    Onnx__AttributeProto *a = mb_alloc(b, sizeof(*a));
    onnx__attribute_proto__init(a);
    a->name = mb_str(b, name);
    a->has_type = 1;
    a->type = type;
    n->attrs[n->p.n_attribute++] = a;
    return a;
}

void mb_attr_int(mb *b, mb_node *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

void mb_attr_float(mb *b, mb_node *n, const char *name, float v)
{
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

void mb_attr_string(mb *b, mb_node *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.data = (uint8_t *)mb_str(b, v);
    a->s.len = strlen(v);
}

void mb_attr_ints(mb *b, mb_node *n, const char *name, size_t cnt, const int64_t *v)
{
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = cnt;
    a->ints = mb_alloc(b, sizeof(int64_t) * (cnt + 1));
    memcpy(a->ints, v, sizeof(int64_t) * cnt);
}

void *mb_pack(mb *b, size_t *len)
{
    *len = onnx__model_proto__get_packed_size(&b->m);
    void *buf = malloc(*len + 1);
    onnx__model_proto__pack(&b->m, buf);
    return buf;
}

float *mb_rand_floats(size_t n, unsigned seed)
{
    float *v = malloc(sizeof(float) * (n ? n : 1));
    if (!v) abort();
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    return v;
}

onnx_tensor mb_run_one(const void *buf, size_t len, int threads, const int64_t *d4, float *x)
{
    onnx_options o = {.threads = threads};
    onnx_model *m = NULL;
    kinfer_status *s = onnx_model_load_mem(buf, len, &o, &m);
    onnx_tensor in = {.name = "x", .dtype = ONNX_DTYPE_FLOAT, .rank = 4, .data = x}, out = {0};
    memcpy(in.dims, d4, 4 * sizeof(int64_t));
    if (!s) s = onnx_model_run(m, &in, 1, NULL, &out, 1);
    if (s) {
        fprintf(stderr, "mb_run_one: %s\n", kinfer_status_msg(s));
        abort();
    }
    onnx_model_free(m);
    return out;
}
