-- cli_filter.lua - Slurm's cli_filter/lua hook for Spoke's --spoke-gang.
--
-- A SPANK option cannot change the allocation request when it comes from
-- sbatch's or salloc's command line, so this filter does: for
-- --spoke-gang=NxG[:k] it sets --nodes=N, --gpus-per-node=G and
-- --ntasks-per-node=G/k, whether the option came from the command line or
-- an #SBATCH line.  It also refuses a gang that no node here could hold,
-- saying what was asked and what exists.  The SPANK plugin (spoke_spank.so)
-- validates the value itself and sets each task's GPUs.
--
-- Site set-up (see spoke_spank(8)): in slurm.conf
--   CliFilterPlugins=cli_filter/lua
-- and this file as cli_filter.lua beside slurm.conf.

-- Keep in step with plugstack.conf's gpus_per_actor= (default 1).
local DEFAULT_GPUS_PER_ACTOR = 1

local function parse(value)
	local n, g, k = string.match(value, "^(%d+)[xX](%d+):(%d+)$")
	if not n then
		n, g = string.match(value, "^(%d+)[xX](%d+)$")
		k = DEFAULT_GPUS_PER_ACTOR
	end
	n, g, k = tonumber(n), tonumber(g), tonumber(k)
	if not n or n < 1 or g < 1 or k < 1 or g % k ~= 0 then
		return nil
	end
	return n, g, k
end

-- The GPUs in a node's Gres= field as scontrol prints it: "gpu:8",
-- "gpu:a100:4(S:0-1),gpu:v100:2", "mps:100,gpu:2", "(null)".
local function gpus_in(gres)
	local total = 0
	gres = string.gsub(gres, "%b()", "")
	for entry in string.gmatch(gres, "[^,]+") do
		if entry == "gpu" or string.match(entry, "^gpu:") then
			total = total + (tonumber(string.match(entry, ":(%d+)$")) or 1)
		end
	end
	return total
end

-- How many nodes there are, and the most GPUs any one of them has.
local function capacity()
	local pipe = io.popen("scontrol show nodes --oneliner 2>/dev/null")
	if not pipe then
		return nil
	end
	local nodes, most = 0, 0
	for line in pipe:lines() do
		if string.match(line, "^NodeName=") then
			nodes = nodes + 1
			local gpus = gpus_in(string.match(line, " Gres=(%S*)") or "")
			if gpus > most then
				most = gpus
			end
		end
	end
	pipe:close()
	if nodes == 0 then
		return nil
	end
	return nodes, most
end

function slurm_cli_setup_defaults(options, early_pass)
	return slurm.SUCCESS
end

function slurm_cli_pre_submit(options, offset)
	local spank = options.spank and options.spank["spoke_spank"]
	local value = spank and spank["spoke-gang"]
	if value == nil or value == "" or value == "none" then
		return slurm.SUCCESS
	end
	local n, g, k = parse(value)
	if not n then
		-- The SPANK plugin has already refused it with its own message.
		return slurm.SUCCESS
	end
	local nodes, most = capacity()
	if nodes and n > nodes then
		slurm.log_error("spoke: --spoke-gang=%s asks for %d nodes; this cluster has %d",
			value, n, nodes)
		return slurm.ERROR
	end
	if most and g > most then
		slurm.log_error("spoke: --spoke-gang=%s asks for %d GPUs per node; the largest node here has %d",
			value, g, most)
		return slurm.ERROR
	end
	options["nodes"] = tostring(n)
	-- Keep a GPU type the user named (--gpus-per-node=a100:8); leave a
	-- --gres=gpu... request alone (Slurm refuses both at once).
	local gres = options["gres"] or ""
	if not string.match(gres, "gpu") then
		local gtype = string.match(options["gpus-per-node"] or "", "^([^:]+):%d+$")
		options["gpus-per-node"] = gtype and (gtype .. ":" .. g) or tostring(g)
	end
	-- A request that names its own task count (spoke-launch's agent step:
	-- one task per node) keeps it; any other gets one task per actor.
	local per_node = math.floor(g / k)
	local ntasks = tonumber(options["ntasks"] or "")
	if ntasks == nil or ntasks <= 1 or ntasks == n * per_node then
		options["ntasks-per-node"] = tostring(per_node)
	end
	return slurm.SUCCESS
end

function slurm_cli_post_submit(offset, job_id, step_id)
	return slurm.SUCCESS
end
