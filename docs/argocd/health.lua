-- Argo CD health check for serving.kinfer.dev/InferenceService.
--
-- Argo CD runs this with the live object in the global `obj` and expects a table
-- {status = Healthy|Progressing|Degraded|Suspended|Missing, message = "..."}.
-- Install it under resource.customizations.health.serving.kinfer.dev_InferenceService in
-- argocd-cm (docs/argocd/README.md). It reads only what kinfer-controller writes (kstatus
-- conventions, controller/src/reconcile/status.c):
--   Suspended    metadata.annotations["serving.kinfer.dev/paused"] == "true" (an explicit pause:
--                kinfer-controller then changes no child and holds any rollout, and writes a
--                Paused=True condition; replica counts never mean suspended: minReplicas 0 runs
--                one replica). Only "true", as in the controller.
--   Degraded     a Stalled=True condition, or Ready=False with a reason that needs a change to
--                clear (ImagePullBackOff, CrashLoopBackOff, ProgressDeadlineExceeded, ...), or a
--                progressive rollout that failed and was rolled back
--                (status.components.predictor.rollout.phase == "Failed").
--   Progressing  no status yet, status.observedGeneration behind metadata.generation, a
--                Reconciling=True condition, a rollout still moving (WaitingForCanary,
--                Progressing, Paused), a canary that is not Ready, or Ready False/Unknown for
--                any other reason.
--   Healthy      observedGeneration == generation and Ready=True, no rollout moving, and the
--                canary (when traffic is split) Ready.
-- The checks run in that order: a paused object is Suspended whatever its status says, and a
-- stalled one is Degraded even while the controller catches up with a newer generation, because
-- the stall is about what is running now.

local hs = {}

-- Reasons that do not clear without a change (to the spec, the image, the cluster).
local failure_reasons = {
  ImagePullBackOff = true, InvalidImageName = true, CrashLoopBackOff = true,
  CreateContainerConfigError = true, ReplicaFailure = true, ProgressDeadlineExceeded = true,
  Unschedulable = false, -- listed for clarity: scheduling often clears when a node is added
  InvalidSpec = true,
}

local function condition(status, ctype)
  if status == nil or type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  local msg = c.message
  if msg == nil or msg == "" then
    msg = fallback
  end
  if c.reason ~= nil and c.reason ~= "" then
    return c.reason .. ": " .. msg
  end
  return msg
end

local meta = obj.metadata or {}
local annotations = meta.annotations or {}
if annotations["serving.kinfer.dev/paused"] == "true" then
  hs.status = "Suspended"
  hs.message = "paused by the serving.kinfer.dev/paused annotation"
  return hs
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "waiting for kinfer-controller to report status"
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "stalled")
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "False" and failure_reasons[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready, "not ready")
  return hs
end

-- A progressive rollout (status.components.predictor.rollout, controller/src/rollout/canary.c) that
-- failed was rolled back: the stable revision still serves, but the desired spec did not roll out.
-- Only the rollout of the latest revision counts: a failed one stays in the status until a new
-- revision replaces it.
local predictor = (status.components or {}).predictor or {}
local rollout = predictor.rollout
if type(rollout) ~= "table" or (rollout.revision ~= nil and predictor.latestCreatedRevision ~= nil and
    rollout.revision ~= predictor.latestCreatedRevision) then
  rollout = nil
end
if rollout ~= nil and rollout.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = "rollout of " .. tostring(rollout.revision or "the latest revision") .. " failed: " ..
    describe(rollout, "rolled back")
  return hs
end

local generation = meta.generation
local observed = status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  -- %d, not tostring: Argo CD's Lua (gopher-lua) holds JSON numbers as floats.
  hs.message = string.format("waiting for kinfer-controller to observe generation %d (observed %s)",
    generation, observed ~= nil and string.format("%d", observed) or "none")
  return hs
end

local reconciling = condition(status, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling, "reconciling")
  return hs
end

-- Ready covers the stable revision; a canary or a rollout still moving is not done yet.
local canary = condition(status, "CanaryReady")
local moving = {WaitingForCanary = true, Progressing = true, Paused = true}
if ready ~= nil and ready.status == "True" and rollout ~= nil and moving[rollout.phase] then
  hs.status = "Progressing"
  hs.message = string.format("rollout %s at %d%% to %s: %s", rollout.phase, rollout.weight or 0,
    tostring(rollout.revision or "the latest revision"), describe(rollout, "in progress"))
  return hs
end
if ready ~= nil and ready.status == "True" and canary ~= nil and canary.status ~= "True" then
  hs.status = "Progressing"
  hs.message = describe(canary, "canary not ready")
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "ready")
  if status.url ~= nil then
    hs.message = hs.message .. " at " .. status.url
  end
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready, "waiting for the Ready condition")
return hs
