-- Argo CD health of a sluice.dev CompletionToken: Healthy once everything the connector had
-- received when the token was minted is processed, Degraded when it can never complete.
-- The CRD follows kstatus (status.observedGeneration, default -1; Ready, Reconciling, Stalled)
-- and adds the Job-like conditions Complete and Failed. As a PostSync hook or in a later sync
-- wave, a CompletionToken makes a sync wait until the data is through the pipeline.
local hs = {}
if obj.status == nil or obj.status.observedGeneration == nil
    or obj.status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the Sluice operator to mint the token"
  return hs
end

local conditions = {}
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    conditions[condition.type] = condition
  end
end

local function is_true(type)
  return conditions[type] ~= nil and conditions[type].status == "True"
end

local function report(status, type, fallback)
  hs.status = status
  local condition = conditions[type]
  if condition ~= nil and condition.message ~= nil and condition.message ~= "" then
    hs.message = condition.reason .. ": " .. condition.message
  elseif condition ~= nil then
    hs.message = condition.reason
  else
    hs.message = fallback
  end
  return hs
end

if is_true("Failed") then
  return report("Degraded", "Failed", "Failed")
end
if is_true("Stalled") then
  return report("Degraded", "Stalled", "Stalled")
end
if is_true("Complete") then
  return report("Healthy", "Complete", "Complete")
end
if is_true("Reconciling") then
  return report("Progressing", "Reconciling", "Reconciling")
end
hs.status = "Progressing"
hs.message = "Waiting for the token to complete"
return hs
