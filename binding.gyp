{
  # The vilg_native addon: N-API (node-addon-api, C++ exceptions on) over oneDNN (-ldnnl).
  # oneDNN dispatches its own ISA at run time; our own loops target x86-64-v2 (bf16 conversion loops
  # carry AVX-512/AVX2 clones, see native/memory.cc). -z nodelete keeps the library mapped when a worker
  # thread that loaded it exits while OpenMP threads are still alive.
  'targets': [
    {
      'target_name': 'vilg_native',
      'sources': [
        'native/addon.cc', 'native/common.cc', 'native/memory.cc', 'native/pool.cc', 'native/matmul.cc', 'native/conv.cc',
        'native/norm.cc', 'native/groupnorm.cc', 'native/softmax.cc', 'native/eltwise.cc', 'native/attention.cc',
        'native/sparse_attention.cc', 'native/copy.cc', 'native/optim.cc', 'native/loss.cc'
      ],
      'dependencies': ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      'defines': ['NAPI_VERSION=8', 'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS'],  # a worker thread terminated mid-call must not abort the process
      'cflags!': ['-fno-exceptions', '-O2'],
      'cflags_cc!': ['-fno-exceptions', '-fno-rtti', '-std=gnu++17', '-O2'],
      'cflags_cc': ['-std=c++17', '-fexceptions', '-fopenmp', '-O3', '-ffp-contract=off', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'conditions': [
        ['target_arch=="x64"', { 'cflags_cc': ['-march=x86-64-v2', '-mtune=generic'] }],
        ['OS=="mac"', {
          'xcode_settings': {
            'GCC_ENABLE_CPP_EXCEPTIONS': 'YES',
            'CLANG_CXX_LANGUAGE_STANDARD': 'c++17',
            'OTHER_CPLUSPLUSFLAGS': ['-Xpreprocessor', '-fopenmp', '-ffp-contract=off'],
          },
          'libraries': ['-ldnnl', '-lomp'],
        }, {
          'libraries': ['-ldnnl', '-fopenmp', '-Wl,-z,nodelete'],
          'ldflags': ['-fopenmp', '-Wl,-z,nodelete'],
        }],
      ],
    },
  ],
}
