{
  # node-gyp (used by prebuildify and by node-gyp-build's fallback) cannot build against LibTorch by itself:
  # this target hands the build to cmake-js through scripts/build-native.js, which leaves
  # build/Release/oneshot_nas.node where node-gyp's callers look for it.
  "targets": [
    {
      "target_name": "oneshot_nas",
      "type": "none",
      "actions": [
        {
          "action_name": "cmake_js_build",
          "inputs": ["CMakeLists.txt"],
          "outputs": ["build/Release/oneshot_nas.node.stamp"],
          "action": ["node", "<(module_root_dir)/scripts/build-native.js"]
        }
      ]
    }
  ]
}
