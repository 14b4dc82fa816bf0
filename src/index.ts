/**
 * vdeploy's library entry: `defineConfig` and the types for deployfiles, and the core functions the
 * CLI is a thin shell over.
 */
export { defineConfig } from './config/define-config.js';
export type { UserConfig, ParsedConfig, UserHost, UserVenv, DjangoConfig, ShipConfig, StrictHostKeyChecking } from './config/schema.js';
export type { ResolvedConfig, ResolvedHost, ResolvedVenv, ResolvedSsh } from './config/resolve-config.js';
export { loadDeployfile, parseConfig, findDeployfile } from './config/load-deployfile.js';
export { parseSelector, type Selector } from './selectors/selector.js';
export { selectVenvs, matchesSelector } from './selectors/select-venvs.js';
export { initProject } from './scaffold/init-project.js';
export { VdeployError, ConfigError, ConnectError, RemoteCommandError, InterruptedError } from './errors.js';
export type { CommandResult } from './remote/command-result.js';
export { addWheels, listWheels, releasedWheels, type AddWheelResult, type ReleasedWheel } from './wheels/repository.js';
export { validateWheel, type ValidatedWheel } from './wheels/validate-wheel.js';
export { parseWheelFilename, normalizeName, type WheelFilename } from './wheels/wheel-filename.js';
export { readReleaseLog, type ReleaseLogEntry } from './wheels/release-log.js';
export { parseRequirement, type Requirement } from './requirements/pep508.js';
export { readRequirementsFile, type RequirementLine } from './requirements/requirements-file.js';
export { evaluateMarker, parseMarker, type MarkerEnvironment } from './requirements/markers.js';
export { planDeploy, type PlanDeployOptions } from './deploy/plan-deploy.js';
export { applyPlan, type ApplyPlanOptions, type Report, type VenvReport, type HostReport, type MigrateMode } from './deploy/apply-plan.js';
export { hasChanges, diffPackages, type Plan, type VenvPlan, type HostPlan, type PackageChange, type ShipPlan, type ShipGroup } from './deploy/plan.js';
export { planShipping, interpreterFingerprint, groupKey, type ShipOptions, type ShipFacts } from './deploy/ship-plan.js';
export type { DeployEvent, VenvOutcome, EventSink } from './deploy/events.js';
export { findUnrecorded, recordUnrecorded, type RecoveredInstall, type VenvWithHistory } from './deploy/reconcile-log.js';
export { describeHolder, type LockHolder } from './deploy/lock-holder.js';
export { createHostConnector, type HostConnector, type HostConnectorOptions } from './remote/connect-host.js';
export { probeHost, type ProbeRequest } from './facts/probe-host.js';
export type { HostFacts, VenvFacts, InterpreterFacts, InstalledPackage } from './facts/types.js';
export { resolveVenv, type Resolution, type ResolvedPackage } from './resolve/resolve-venv.js';
export { fleetStatus, type FleetStatus, type VenvStatus, type MatrixRow } from './status/fleet-status.js';
export { readHistories, type VenvHistory } from './status/venv-history.js';
export { listReleases, type ReleasesListing, type VenvReleases, type ReleaseRow } from './status/list-releases.js';
export { parseHistory, chooseRollbackTarget, type HistoryEntry } from './history/history-entry.js';
export type { PlanMode } from './deploy/plan-deploy.js';
export { relocateVenv, RelocateError, type RelocateRequest, type RelocateResult, type RelocateChange } from './relocate/relocate.js';
export { relocateFleet, relocateHere, type RelocateEntry, type RelocateEntryError, type RelocateFleetOptions } from './relocate/relocate-fleet.js';
export { fetchWheels, type FetchOptions, type FetchResult, type FetchEvent, type TargetOutcome, type FetchedWheel, type PackageRow } from './fetch/fetch.js';
export { targetsFromCache, targetFromFacts, explicitTarget, type FetchTarget, type ExplicitTarget } from './fetch/targets.js';
export { defaultInterpreterCache, InterpreterCache } from './facts/interpreter-cache.js';
