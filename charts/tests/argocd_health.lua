-- Runs docs/argocd/health.lua the way Argo CD does: the live object in the global `obj`, only
-- the safe base libraries visible (no io, os, require), and the returned table checked for shape.
-- Usage: lua5.4 argocd_health.lua HEALTH.lua OBJECT.lua   prints "<status>\t<message>".
local health_path, obj_path = arg[1], arg[2]
if not health_path or not obj_path then
  io.stderr:write("usage: argocd_health.lua HEALTH.lua OBJECT.lua\n")
  os.exit(2)
end
local obj = assert(load("return " .. assert(io.open(obj_path)):read("a"), obj_path, "t", {}))()
local env = {
  obj = obj, ipairs = ipairs, pairs = pairs, next = next, type = type, tostring = tostring,
  tonumber = tonumber, pcall = pcall, error = error, select = select,
  string = string, table = table, math = math,
}
local chunk, err = loadfile(health_path, "t", env)
if not chunk then
  io.stderr:write(err, "\n")
  os.exit(2)
end
local ok, hs = pcall(chunk)
if not ok then
  io.stderr:write("health script error: ", tostring(hs), "\n")
  os.exit(1)
end
local valid = {Healthy = true, Progressing = true, Degraded = true, Suspended = true, Missing = true, Unknown = true}
if type(hs) ~= "table" or not valid[hs.status] or type(hs.message) ~= "string" or hs.message == "" then
  io.stderr:write("health script returned no valid {status, message} table\n")
  os.exit(1)
end
print(hs.status .. "\t" .. hs.message)
