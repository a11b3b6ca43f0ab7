-- Argo CD health of a sluice.dev Connector.
-- The Connector CRD follows kstatus: status.observedGeneration (default -1 until the operator has
-- seen the object) and the conditions Ready, Reconciling and Stalled. This script reads only those.
local hs = {}
if obj.status == nil or obj.status.observedGeneration == nil
    or obj.status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the Sluice operator to observe the latest generation"
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

if is_true("Stalled") then
  return report("Degraded", "Stalled", "Stalled")
end
if is_true("Reconciling") then
  return report("Progressing", "Reconciling", "Reconciling")
end
if conditions["Ready"] ~= nil and conditions["Ready"].status == "True" then
  return report("Healthy", "Ready", "Ready")
end
if conditions["Ready"] ~= nil and conditions["Ready"].status == "False" then
  return report("Degraded", "Ready", "Not ready")
end
return report("Progressing", "Ready", "Waiting for the connector to become ready")
