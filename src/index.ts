/**
 * oneshot-nas: one-shot architecture search (Bender et al., ICML 2018) for Node.js.
 * The module API: the search space, schedules, datasets, the native Supernet and whole training runs.
 */
export { NasError, type NasErrorCode } from './util/errors';
export { loadAddon } from './native/binding';
export {
  OPS,
  OP_SPECS,
  type OpKind,
  type OpSpec,
  DEFAULT_SPACE,
  parseArchitecture,
  formatArchitecture,
  validateArchitecture,
  allOnArchitecture,
  parseCandidate,
  ALL_ON,
  countArchitectures,
  type Architecture,
  type Block,
  type OpName,
  type SearchSpace,
} from './space/architecture';
export { sampleArchitectures } from './space/sampleArchitecture';
export { modelSize, type ModelShape, type ModelSize } from './space/modelSize';
export { dropProbability, dropTables, type DropoutSchedule, type StepRange } from './schedule/dropout';
export { learningRate, learningRateTable, type LearningRateSchedule } from './schedule/learningRate';
export {
  loadDataset,
  openDataset,
  prepareDataset,
  loadImageFolder,
  DATASETS,
  FASHION_MNIST_DIR,
  type DatasetEntry,
  type DatasetName,
  type LoadDatasetOptions,
} from './data/loadDataset';
export { readIdx } from './data/idx';
export { readCifar } from './data/cifar';
export { syntheticSet } from './data/synthetic';
export { sliceSet, channelStats, readImages, type ImageSet, type DatasetSplits } from './data/types';
export {
  prepareImageFolder,
  decodeImageFile,
  listImageFiles,
  defaultCacheDir,
  IMAGE_EXTENSIONS,
  type ImageFolderOptions,
  type ImageFolderEvent,
  type ImageFolderManifest,
  type PreparedImageFolder,
  type SkippedFile,
} from './data/imageFolder';
export {
  Supernet,
  NativeData,
  DEFAULT_SUPERNET_CONFIG,
  type SupernetConfig,
  type EvaluationResult,
  type StepProgress,
} from './model/Supernet';
export { defaultThreads } from './util/threads';
export {
  trainOneShot,
  readRunOptions,
  type TrainEvent,
  type TrainResult,
  type MetricsLine,
  type TrainHooks,
} from './train/trainOneShot';
export { PRESETS, withOverrides, type TrainOptions } from './train/trainOptions';
export {
  runSearch,
  DEFAULT_SEARCH,
  SCORING_MODES,
  type ScoringMode,
  type SearchOptions,
  type SearchSummary,
  type SearchEvent,
  type SearchHooks,
} from './search/runSearch';
export { DEFAULT_RACE, raceSlices, raceSizes, racePasses, type RaceSchedule, type RaceEvent } from './search/race';
export { ProcessGroup, distOptions, DIST_DEFAULTS, type DistOptions } from './distributed/processGroup';
export { launchWorkers, type LaunchFlags, type LaunchResult } from './distributed/launch';
export {
  selectArchitectures,
  byRank,
  isRaced,
  SELECTION_RULES,
  SELECT_DEFAULTS,
  type SearchResult,
  type SelectionRule,
  type SelectOptions,
} from './search/select';
export { RandomSearch, EvolutionSearch, createStrategy, STRATEGIES, type SearchStrategy, type StrategyName } from './search/strategy';
export { openSupernet } from './search/openSupernet';
export { StandaloneModel } from './model/StandaloneModel';
export {
  retrain,
  retrainJobs,
  RETRAIN_DEFAULTS,
  type RetrainOptions,
  type RetrainInput,
  type RetrainRun,
  type RetrainSummary,
  type RetrainEvent,
  type RetrainHooks,
} from './retrain/retrain';
export { exportModel, loadModel, normaliseImages, type ExportedModelInfo } from './retrain/exportModel';
export { exportOnnx, onnxModel, ONNX_OPSET, type ExportOnnxOptions, type ExportOnnxResult } from './export/onnx';
export { readSafetensors, writeSafetensors } from './retrain/safetensors';
export { buildReport, type ReportSummary } from './report/buildReport';
export { drawCell, cellGraph } from './report/cellDrawing';
export { spearman, kendall, bootstrapInterval, meanPairwiseSpearman, type Interval } from './report/correlation';
export {
  correlationStudy,
  dropoutStudy,
  klStudy,
  CORRELATION_PRESETS,
  CORRELATION_PRESET_NAMES,
  type CorrelationOptions,
  type CorrelationPreset,
  type CorrelationPresetName,
  type CorrelationRow,
  type CorrelationStudy,
  type CorrelationEvent,
  type DropoutStudyOptions,
  type DropoutRow,
  type KlOptions,
  type KlRow,
  type KlProgress,
} from './study/studies';
export { runPipeline, PIPELINE_PRESETS, type PipelineOptions, type PipelineResult, type PipelineEvent } from './pipeline/runPipeline';
