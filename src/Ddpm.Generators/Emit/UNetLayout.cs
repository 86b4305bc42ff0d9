using System.Collections.Generic;
using System.Linq;
using Ddpm.Generators.Model;
using Ddpm.Generators.SpecCore;

namespace Ddpm.Generators.Emit
{
    /// <summary>
    /// The module tree a UNetSpec stands for, in the tutorial's order and with its PyTorch names:
    /// init_conv, time_mlp, class_emb (conditional models), downs.i.j, ups.i.j, mid_block1, mid_attn, mid_block2, final_res_block, final_conv.
    /// The module emitter and the parameter count both walk this one description.
    /// </summary>
    internal sealed class UNetLayout
    {
        public enum Kind { ResnetBlock, LinearAttention, FullAttention, Downsample, Upsample, Conv3x3 }

        /// <summary>One module: its C# field, its state-dict path, and its channels.</summary>
        public sealed record Module(string Field, string Path, Kind Kind, int In, int Out);

        /// <summary>One stage of the down or up path; Resolution is the feature map size inside it.</summary>
        public sealed record Stage(int Index, int Resolution, int In, int Out, int Blocks, AttentionKind Attention,
                                   IReadOnlyList<Module> ResnetBlocks, Module? AttentionModule, Module Resample);

        public UNetLayout(UNetSpec spec)
        {
            Spec = spec;
            TimeDim = spec.Dim * 4;
            int[] dims = new[] { spec.Dim }.Concat(spec.DimMults.Select(m => spec.Dim * m)).ToArray();
            int count = spec.DimMults.Count;

            for (int i = 0; i < count; i++)
            {
                int dimIn = dims[i], dimOut = dims[i + 1];
                bool last = i == count - 1;
                StageSpec stage = spec.Stages[i];
                var blocks = Enumerable.Range(0, stage.Blocks)
                    .Select(b => new Module($"down{i}Block{b}", $"downs.{i}.{b}", Kind.ResnetBlock, dimIn, dimIn)).ToList();
                int next = stage.Blocks;
                Module? attention = AttentionModule(stage.Attention, $"down{i}Attention", $"downs.{i}.{next}", dimIn);
                if (attention != null) next++;
                var resample = new Module($"down{i}Sample", $"downs.{i}.{next}", last ? Kind.Conv3x3 : Kind.Downsample, dimIn, dimOut);
                Downs.Add(new Stage(i, spec.ImageSize >> i, dimIn, dimOut, stage.Blocks, stage.Attention, blocks, attention, resample));
            }

            MidDim = dims[count];
            MidBlock1 = new Module("midBlock1", "mid_block1", Kind.ResnetBlock, MidDim, MidDim);
            MidAttention = AttentionModule(spec.MidAttention, "midAttention", "mid_attn", MidDim);
            MidBlock2 = new Module("midBlock2", "mid_block2", Kind.ResnetBlock, MidDim, MidDim);

            for (int j = 0; j < count; j++)
            {
                Stage mirror = Downs[count - 1 - j];
                bool last = j == count - 1;
                int dimIn = mirror.In, dimOut = mirror.Out;
                var blocks = Enumerable.Range(0, mirror.Blocks)
                    .Select(b => new Module($"up{j}Block{b}", $"ups.{j}.{b}", Kind.ResnetBlock, dimOut + dimIn, dimOut)).ToList();
                int next = mirror.Blocks;
                Module? attention = AttentionModule(mirror.Attention, $"up{j}Attention", $"ups.{j}.{next}", dimOut);
                if (attention != null) next++;
                var resample = new Module($"up{j}Sample", $"ups.{j}.{next}", last ? Kind.Conv3x3 : Kind.Upsample, dimOut, dimIn);
                Ups.Add(new Stage(j, mirror.Resolution, dimOut, dimIn, mirror.Blocks, mirror.Attention, blocks, attention, resample));
            }

            FinalBlock = new Module("finalResBlock", "final_res_block", Kind.ResnetBlock, spec.Dim * 2, spec.Dim);
        }

        public UNetSpec Spec { get; }
        public int TimeDim { get; }
        public int MidDim { get; }
        public List<Stage> Downs { get; } = new List<Stage>();
        public List<Stage> Ups { get; } = new List<Stage>();
        public Module MidBlock1 { get; }
        public Module? MidAttention { get; }
        public Module MidBlock2 { get; }
        public Module FinalBlock { get; }

        private static Module? AttentionModule(AttentionKind kind, string field, string path, int dim) => kind switch
        {
            AttentionKind.Linear => new Module(field, path, Kind.LinearAttention, dim, dim),
            AttentionKind.Full => new Module(field, path, Kind.FullAttention, dim, dim),
            _ => null,
        };

        /// <summary>Every parameter of the model with its shape, in state-dict order.</summary>
        public IEnumerable<(string Key, long[] Shape)> Parameters()
        {
            int dim = Spec.Dim, channels = Spec.Channels, hidden = Spec.Heads * Spec.DimHead;
            foreach (var p in Conv("init_conv", dim, channels, 1)) yield return p;
            foreach (var p in Linear("time_mlp.1", TimeDim, dim)) yield return p;
            foreach (var p in Linear("time_mlp.3", TimeDim, TimeDim)) yield return p;
            // A conditional model's class embedding: one row per class plus the null class.
            if (Spec.IsConditional) yield return ("class_emb.weight", new long[] { Spec.Classes + 1, TimeDim });
            foreach (Stage stage in Downs.Concat(Ups))
                foreach (Module module in StageModules(stage))
                    foreach (var p in Of(module)) yield return p;
            foreach (Module? module in new[] { MidBlock1, MidAttention, MidBlock2, FinalBlock })
                if (module != null)
                    foreach (var p in Of(module)) yield return p;
            foreach (var p in Conv("final_conv", channels, dim, 1)) yield return p;

            IEnumerable<(string, long[])> Of(Module m)
            {
                switch (m.Kind)
                {
                    case Kind.ResnetBlock:
                        foreach (var p in Linear(m.Path + ".mlp.1", m.Out * 2, TimeDim)) yield return p;
                        foreach (var p in Conv(m.Path + ".block1.proj", m.Out, m.In, 3)) yield return p;
                        foreach (var p in Norm(m.Path + ".block1.norm", m.Out)) yield return p;
                        foreach (var p in Conv(m.Path + ".block2.proj", m.Out, m.Out, 3)) yield return p;
                        foreach (var p in Norm(m.Path + ".block2.norm", m.Out)) yield return p;
                        if (m.In != m.Out)
                            foreach (var p in Conv(m.Path + ".res_conv", m.Out, m.In, 1)) yield return p;
                        break;
                    case Kind.LinearAttention:
                        yield return (m.Path + ".fn.fn.to_qkv.weight", new long[] { hidden * 3, m.In, 1, 1 });
                        foreach (var p in Conv(m.Path + ".fn.fn.to_out.0", m.In, hidden, 1)) yield return p;
                        foreach (var p in Norm(m.Path + ".fn.fn.to_out.1", m.In)) yield return p;
                        foreach (var p in Norm(m.Path + ".fn.norm", m.In)) yield return p;
                        break;
                    case Kind.FullAttention:
                        yield return (m.Path + ".fn.fn.to_qkv.weight", new long[] { hidden * 3, m.In, 1, 1 });
                        foreach (var p in Conv(m.Path + ".fn.fn.to_out", m.In, hidden, 1)) yield return p;
                        foreach (var p in Norm(m.Path + ".fn.norm", m.In)) yield return p;
                        break;
                    case Kind.Downsample:
                        foreach (var p in Conv(m.Path + ".1", m.Out, m.In * 4, 1)) yield return p;
                        break;
                    case Kind.Upsample:
                        foreach (var p in Conv(m.Path + ".1", m.Out, m.In, 3)) yield return p;
                        break;
                    case Kind.Conv3x3:
                        foreach (var p in Conv(m.Path, m.Out, m.In, 3)) yield return p;
                        break;
                }
            }
        }

        public long ParameterCount() => Parameters().Sum(p => p.Shape.Aggregate(1L, (a, b) => a * b));

        public static IEnumerable<Module> StageModules(Stage stage)
        {
            foreach (Module block in stage.ResnetBlocks) yield return block;
            if (stage.AttentionModule != null) yield return stage.AttentionModule;
            yield return stage.Resample;
        }

        private static IEnumerable<(string, long[])> Conv(string path, int output, int input, int kernel)
        {
            yield return (path + ".weight", new long[] { output, input, kernel, kernel });
            yield return (path + ".bias", new long[] { output });
        }

        private static IEnumerable<(string, long[])> Linear(string path, int output, int input)
        {
            yield return (path + ".weight", new long[] { output, input });
            yield return (path + ".bias", new long[] { output });
        }

        private static IEnumerable<(string, long[])> Norm(string path, int channels)
        {
            yield return (path + ".weight", new long[] { channels });
            yield return (path + ".bias", new long[] { channels });
        }
    }
}
