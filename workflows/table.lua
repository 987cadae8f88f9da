-- A Lua workflow that returns the workflow table: the same keys as YAML,
-- with a function for the `lua` step (it gets the workflow context).
--
--   agentcube run workflows/table.lua --set n=5
return {
  name = "squares",
  inputs = { n = { default = 4, type = "number" } },
  steps = {
    { id = "squares",
      run = { language = "python",
              code = "import json\n" ..
                     "n = ${{ inputs.n }}\n" ..
                     "print(json.dumps([i * i for i in range(1, n + 1)]))" } },
    { id = "sum", needs = "squares",
      lua = function(ctx)
        local total = 0
        for _, v in ipairs(ctx.fromJSON(ctx.steps.squares.stdout)) do
          total = total + v
        end
        ctx.log("sum of squares: " .. total)
        return { sum = total }
      end },
  },
  outputs = { sum = "${{ steps.sum.outputs.sum }}" },
}
